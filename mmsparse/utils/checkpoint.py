"""Safe and trusted checkpoint loading for mmengine 0.10.7 under torch >= 2.6.

torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``; mmengine 0.10.7 omits the argument,
so ``resume``, ``load_from`` and ``init_cfg=dict(type='Pretrained')`` fail on mmengine's own
checkpoints, whose ``meta``/``message_hub`` hold numpy scalars/dtypes/arrays and ``HistoryBuffer``.

The fix replaces mmengine's loader for local files (every mmengine read goes through
``CheckpointLoader``) with :func:`load_checkpoint_file`, which:

1. loads with ``weights_only=True`` and an allow-list of exactly the extra types mmengine writes
   (:func:`mmengine_safe_globals`) -- torchvision/timm/official weights and mmengine checkpoints
   all load this way, and a malicious pickle is still refused;
2. only if that is refused, unpickles fully (``weights_only=False``) **if the file is trusted**: it
   lies under a trusted directory -- a work_dir of the current run (registered by ``tools/*.py``) or
   a directory listed in the environment variable ``MMSPARSE_TRUSTED_DIRS`` (``os.pathsep``
   separated). Otherwise it raises :class:`UntrustedCheckpointError` saying how to trust it.

A missing file raises ``FileNotFoundError`` and a truncated/corrupt one :class:`CorruptCheckpointError`,
both naming the path; nothing is written in either case.
"""
import os
import os.path as osp
import pickle
import zipfile
from typing import Iterable, List, Optional

import torch

from .errors import InputNotFoundError

__all__ = [
    'CorruptCheckpointError', 'UntrustedCheckpointError', 'add_trusted_dir', 'check_checkpoint_file',
    'install_checkpoint_loader', 'load_checkpoint_file', 'mmengine_safe_globals', 'trusted_dirs'
]

_TRUSTED_DIRS: List[str] = []


class CorruptCheckpointError(RuntimeError):
    """The checkpoint file exists but cannot be read (truncated, not a checkpoint, bad CRC)."""


class UntrustedCheckpointError(pickle.UnpicklingError):
    """The file needs full unpickling but is not in a trusted directory."""


def add_trusted_dir(path: str) -> None:
    """Trust every checkpoint under ``path`` (e.g. the work_dir this process writes)."""
    path = osp.realpath(osp.expanduser(path))
    if path not in _TRUSTED_DIRS:
        _TRUSTED_DIRS.append(path)


def trusted_dirs() -> List[str]:
    """Registered work dirs plus ``$MMSPARSE_TRUSTED_DIRS``, as real paths."""
    env = [
        osp.realpath(osp.expanduser(p)) for p in os.environ.get('MMSPARSE_TRUSTED_DIRS', '').split(os.pathsep)
        if p
    ]
    return _TRUSTED_DIRS + env


def _is_trusted(filename: str) -> bool:
    real = osp.realpath(filename)
    return any(osp.commonpath([real, d]) == d for d in trusted_dirs())


def mmengine_safe_globals() -> list:
    """The non-tensor types that mmengine puts into the checkpoints it saves.

    Resolved at run time because numpy 1.x and 2.x name their pickling helpers differently
    (``numpy.core`` vs ``numpy._core``).
    """
    import numpy as np
    allowed = [np.ndarray, np.dtype]
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    # numpy >= 1.25 pickles dtypes as instances of per-type classes, e.g. numpy.dtypes.Float64DType
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed.append(HistoryBuffer)
    # HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'min'); allow exactly that
    allowed += [(_history_buffer_getattr, 'builtins.getattr'),
                (_history_buffer_getattr, '__builtin__.getattr')]
    return allowed


def _history_buffer_getattr(obj, name):
    """The only ``getattr`` a safe load may perform: a public method of ``HistoryBuffer``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and not name.startswith('_') and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed in a safe load')


def check_checkpoint_file(filename: str) -> None:
    """Fail early, before anything is written, if ``filename`` is missing or corrupt.

    Zip-format checkpoints (torch >= 1.6) are CRC-checked entry by entry without unpickling.
    """
    if not osp.isfile(filename):
        raise InputNotFoundError(f'checkpoint not found: {filename}')
    if zipfile.is_zipfile(filename):
        try:
            with zipfile.ZipFile(filename) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CorruptCheckpointError(f'checkpoint {filename} is corrupt: {e}') from e
        if bad is not None:
            raise CorruptCheckpointError(f'checkpoint {filename} is corrupt: bad CRC in entry {bad}')
        return
    # legacy (non-zip) torch files, or something else entirely: try to read it
    load_checkpoint_file(filename, map_location='cpu')


def load_checkpoint_file(filename: str, map_location=None, extra_safe_globals: Optional[Iterable] = None):
    """Load a local checkpoint with the trust policy described in the module docstring.

    Args:
        filename (str): local path.
        map_location: as for ``torch.load``.
        extra_safe_globals (Iterable, optional): further types allowed in the safe load.

    Returns:
        The unpickled object (usually a dict with ``state_dict``/``meta``/``message_hub``).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise InputNotFoundError(f'checkpoint not found: {filename}')
    _check_container(filename)
    allowed = mmengine_safe_globals() + list(extra_safe_globals or [])
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not _is_trusted(filename):
            raise UntrustedCheckpointError(
                f'{filename} holds Python objects that the safe loader refuses ({e}). If you trust '
                'this file, add its directory to the environment variable MMSPARSE_TRUSTED_DIRS '
                f'(e.g. MMSPARSE_TRUSTED_DIRS={osp.dirname(osp.realpath(filename))}); checkpoints '
                'in the work_dir of the current run are trusted automatically.') from e
        safe_error = e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CorruptCheckpointError(f'checkpoint {filename} is corrupt or not a torch file: {e}') from e
    try:
        return torch.load(filename, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, pickle.UnpicklingError) as e:
        raise CorruptCheckpointError(f'checkpoint {filename} is corrupt: {e}') from safe_error


def _check_container(filename: str) -> None:
    """Zip (torch >= 1.6) or legacy pickle-protocol-2 torch file, else :class:`CorruptCheckpointError`."""
    if zipfile.is_zipfile(filename):
        return
    with open(filename, 'rb') as f:
        head = f.read(2)
    if head != b'\x80\x02':  # legacy torch files start with a protocol-2 pickle of torch's magic number
        raise CorruptCheckpointError(
            f'checkpoint {filename} is corrupt or not a torch file (neither a zip archive nor a '
            'legacy torch pickle; a truncated download looks like this)')


def _mmengine_local_loader(filename, map_location):
    return load_checkpoint_file(filename, map_location)


def install_checkpoint_loader() -> None:
    """Make mmengine's ``CheckpointLoader`` use :func:`load_checkpoint_file` for local paths."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=_mmengine_local_loader, force=True)

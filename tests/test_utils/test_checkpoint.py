"""Checkpoint loading: mmengine checkpoints load safely; untrusted pickles are refused."""
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import CheckpointLoader, load_checkpoint, save_checkpoint

import mmsparse  # noqa: F401  (mmengine is loaded: installs the loader)
from mmsparse.utils import (CorruptCheckpointError, UntrustedCheckpointError, add_trusted_dir,
                            check_checkpoint_file, load_checkpoint_file)


class _Payload:
    """An object whose unpickling calls ``os.getpid`` (stands for arbitrary code)."""

    def __reduce__(self):
        return (os.getpid, ())


def _mmengine_style_checkpoint(path, features=3):
    model = nn.Linear(features, 2)
    hub = MessageHub.get_instance('test_ckpt_hub')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', 7)
    meta = dict(
        epoch=np.int64(1),
        iter=7,
        seed=np.uint32(3),
        hist=np.arange(3, dtype=np.float32),
        dtype=np.dtype('float32'),
        mmengine_version='0.10.7')
    save_checkpoint(dict(state_dict=model.state_dict(), meta=meta, message_hub=hub.state_dict()), path)
    return model


def test_mmengine_checkpoint_loads_without_trust(tmp_path):
    """numpy scalars/arrays/dtypes and HistoryBuffer go through the weights-only allow-list."""
    path = str(tmp_path / 'ckpt.pth')
    model = _mmengine_style_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):  # what plain torch 2.14 does with it
        torch.load(path, weights_only=True)
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['seed'].dtype == np.uint32
    assert np.array_equal(ckpt['meta']['hist'], np.arange(3, dtype=np.float32))
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    fresh = nn.Linear(3, 2)
    load_checkpoint(fresh, path, map_location='cpu')
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)


def test_untrusted_pickle_is_refused_and_trusted_dir_loads(tmp_path, monkeypatch):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Payload()}, path)
    with pytest.raises(UntrustedCheckpointError, match='MMSPARSE_TRUSTED_DIRS'):
        load_checkpoint_file(path)
    monkeypatch.setenv('MMSPARSE_TRUSTED_DIRS', str(tmp_path))
    assert load_checkpoint_file(path)['x'] == os.getpid()


def test_work_dir_registered_as_trusted(tmp_path):
    trusted = tmp_path / 'work_dir'
    trusted.mkdir()
    path = str(trusted / 'x.pth')
    torch.save({'x': _Payload()}, path)
    add_trusted_dir(str(trusted))
    assert load_checkpoint_file(path)['x'] == os.getpid()


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        CheckpointLoader.load_checkpoint(missing)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        check_checkpoint_file(missing)
    good = str(tmp_path / 'good.pth')
    _mmengine_style_checkpoint(good)
    data = open(good, 'rb').read()
    for name, payload in (('garbage.pth', b'garbage' * 50), ('half.pth', data[:len(data) // 2])):
        bad = str(tmp_path / name)
        open(bad, 'wb').write(payload)
        with pytest.raises(CorruptCheckpointError, match=name):
            CheckpointLoader.load_checkpoint(bad)
        with pytest.raises(CorruptCheckpointError, match=name):
            check_checkpoint_file(bad)
    # a flipped byte inside a stored tensor is caught by the CRC check before any load
    _mmengine_style_checkpoint(good, features=1024)  # 8 KiB of weights in entry data/0
    data = open(good, 'rb').read()
    flipped = bytearray(data)
    at = data.find(b'data/0') + 2000
    flipped[at] ^= 0xFF
    bad = str(tmp_path / 'flipped.pth')
    open(bad, 'wb').write(bytes(flipped))
    with pytest.raises(CorruptCheckpointError, match='flipped.pth'):
        check_checkpoint_file(bad)


class _GetattrPayload:
    """Pickles as ``getattr(numpy.ndarray, 'tofile')`` (both names are allow-listed): refused."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_safe_getattr_only_serves_history_buffer(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': _GetattrPayload()}, path)
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint_file(path)

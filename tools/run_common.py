"""What tools/train.py, test.py and search.py share: config loading and Runner construction."""
import os
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner


def load_config(path, cfg_options=None, launcher='none', work_dir=None):
    """Load ``path``, merge ``--cfg-options``, set the launcher and the work_dir.

    ``work_dir`` priority: CLI > config > ``./work_dirs/<config stem>`` (as in mmdet's tools).
    """
    from mmsparse.openmmlab import setup_openmmlab
    setup_openmmlab()  # version checks and the checkpoint loader fix, before anything loads
    if not osp.isfile(path):
        from mmsparse.utils import InputNotFoundError
        raise InputNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def build_runner(cfg, resume_auto=False, loaders=('train_dataloader', 'val_dataloader', 'test_dataloader')):
    """Check the checkpoint to load, set up CPU distributed if needed, and build the Runner.

    A missing or corrupt checkpoint is reported here, before the Runner creates or touches
    anything in the work_dir.
    """
    from mmsparse.utils import add_trusted_dir, check_checkpoint_file, setup_cpu_distributed
    add_trusted_dir(cfg.work_dir)
    check_data_roots(cfg, loaders)
    if cfg.get('load_from'):
        check_checkpoint_file(cfg.load_from)
    elif resume_auto:
        last = osp.join(cfg.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                check_checkpoint_file(f.read().strip())
    setup_cpu_distributed(cfg, cfg.launcher)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    from mmengine.registry import RUNNERS
    return RUNNERS.build(cfg)


def set_env_defaults():
    """Environment defaults the tools need on CPU (numba's CUDA simulator for KittiMetric)."""
    os.environ.setdefault('NUMBA_ENABLE_CUDASIM', '0' if _has_cuda() else '1')


def _has_cuda():
    import torch
    return torch.cuda.is_available()


def _dataset_roots(dataset_cfg):
    """Yield the ``data_root`` of a dataset config, descending into wrappers (Repeat/Concat...)."""
    if not isinstance(dataset_cfg, dict):
        return
    if dataset_cfg.get('data_root'):
        yield dataset_cfg['data_root']
    inner = dataset_cfg.get('dataset')
    if isinstance(inner, dict):
        yield from _dataset_roots(inner)
    for sub in dataset_cfg.get('datasets', []) or []:
        yield from _dataset_roots(sub)


def check_data_roots(cfg, loaders=('train_dataloader', 'val_dataloader', 'test_dataloader')):
    """Raise one clear error if a dataloader's ``data_root`` does not exist.

    The message names the dataloader, the path, and what to put there: the config's
    ``data_hint`` if it sets one (e.g. "download COCO 2017 ... into data/coco").
    """
    for key in loaders:
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        for root in _dataset_roots(loader.get('dataset', {})):
            # a URI (s3://, http://, ...) is read through the dataset's backend_args: not checkable here
            if '://' in str(root) or osp.isdir(root):
                continue
            from mmsparse.utils import InputNotFoundError
            hint = cfg.get('data_hint', 'see docs/data.md for the expected layout')
            raise InputNotFoundError(f'{key}.dataset.data_root "{root}" does not exist: {hint}')


def run_main(main, end_process_after_distributed=True):
    """Run a tool's ``main`` and return what it returns.

    The errors we raise for user input (a missing config, checkpoint or data root, a corrupt or
    untrusted checkpoint) become one line and exit code 2; anything else keeps its traceback.

    The process group is destroyed on the way out, after success and after an error alike. In a
    distributed run the process then ends at once (``atexit`` handlers run, stdio is flushed) instead
    of going through the interpreter's finalisation: ``destroy_process_group`` does not stop gloo's
    worker threads, and one that is still releasing the tensors of the last collective when the
    interpreter finalises cannot take the GIL, so ``pthread_exit`` unwinds through a C++ destructor
    and the rank aborts ("terminate called without an active exception", SIGABRT). torchrun then
    fails the whole job although every rank finished its work.

    Args:
        main (callable): the tool's ``main()``.
        end_process_after_distributed (bool): end the process as described above when a process group
            was destroyed. Only a caller that must go on running (a test) passes False.
    """
    import sys

    from mmsparse.utils import (CorruptCheckpointError, InputNotFoundError, UntrustedCheckpointError,
                                teardown_distributed)

    def must_end_now():
        """Destroy the process group; True if there was one and the process is to end at once."""
        return teardown_distributed() and end_process_after_distributed

    try:
        result = main()
    except (InputNotFoundError, CorruptCheckpointError, UntrustedCheckpointError) as e:
        print(f'{osp.basename(sys.argv[0])}: error: {e}', file=sys.stderr)
        if must_end_now():
            _exit_skipping_finalisation(2)
        sys.exit(2)
    except BaseException as e:
        if must_end_now():
            _exit_skipping_finalisation(_report_exit_code(e))
        raise
    if must_end_now():
        _exit_skipping_finalisation(0)
    return result


def _report_exit_code(error):
    """Print ``error`` as the interpreter would at exit and return the exit code it would use."""
    import sys
    import traceback
    if isinstance(error, SystemExit):
        if error.code is None or isinstance(error.code, int):
            return error.code or 0
        print(error.code, file=sys.stderr)
        return 1
    traceback.print_exception(error)
    return 130 if isinstance(error, KeyboardInterrupt) else 1


def _exit_skipping_finalisation(code):
    """Run the ``atexit`` handlers (logging's flush, tempdir clean-up), flush stdio, ``os._exit(code)``."""
    import atexit
    import sys
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe must not change the exit code
            pass
    os._exit(code)

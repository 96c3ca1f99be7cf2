"""Process-group setup that also works on machines without CUDA.

mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` first and therefore crashes on a
CPU-only machine, and its DDP wrapper passes ``device_ids=[local_rank]``, which DDP rejects for CPU
modules. The tools call :func:`setup_cpu_distributed` before building the Runner; the Runner then sees
an initialised default group and skips its own ``init_dist``.
"""
import os

import torch
import torch.distributed as torch_dist


def cuda_available() -> bool:
    return torch.cuda.is_available()


__all__ = ['cuda_available', 'setup_cpu_distributed', 'teardown_distributed']


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Initialise a ``gloo`` process group and adapt ``cfg`` for CPU DDP when there is no CUDA.

    Args:
        cfg (mmengine.Config): the run config, modified in place (``env_cfg.dist_cfg.backend``,
            ``model_wrapper_cfg``).
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        bool: True if this call set up CPU distributed training.
    """
    if launcher == 'none' or cuda_available():
        return False
    if launcher == 'slurm':
        _slurm_env_to_torch_env()
    elif launcher == 'mpi':
        os.environ.setdefault('RANK', os.environ.get('OMPI_COMM_WORLD_RANK', '0'))
        os.environ.setdefault('WORLD_SIZE', os.environ.get('OMPI_COMM_WORLD_SIZE', '1'))
        os.environ.setdefault('LOCAL_RANK', os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'))
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(f'--launcher {launcher} needs the environment variable {key} '
                               '(use tools/dist_train.sh, which runs torchrun)')
    if not torch_dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
        import datetime
        torch_dist.init_process_group(backend='gloo', timeout=datetime.timedelta(seconds=timeout))
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or {}
    if wrapper.get('type', 'MMDistributedDataParallel') in ('MMDistributedDataParallel',
                                                            'mmsparse.MMCPUDistributedDataParallel'):
        wrapper = dict(wrapper)
        wrapper['type'] = 'mmsparse.MMCPUDistributedDataParallel'
        wrapper['device_ids'] = None
        wrapper.setdefault('broadcast_buffers', False)
        # the Runner reads the top-level flag only when it builds the wrapper config itself
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    return True


def teardown_distributed() -> bool:
    """Destroy the default process group if one exists (any backend); True if one was destroyed.

    Called by the tools when they finish or fail, so no rank exits with live gloo/nccl threads.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return False
    torch_dist.destroy_process_group()
    return True


def _slurm_env_to_torch_env() -> None:
    """Translate SLURM's variables to the torchrun ones (MASTER_ADDR from the first node)."""
    import subprocess
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_PORT', '29500')

"""Environment, distributed and checkpoint utilities of mmsparse."""
from .checkpoint import (CorruptCheckpointError, UntrustedCheckpointError, add_trusted_dir,
                         check_checkpoint_file, install_checkpoint_loader, load_checkpoint_file)
from .dist import setup_cpu_distributed, teardown_distributed
from .errors import InputNotFoundError
from .setup_env import register_all_modules

__all__ = [
    'CorruptCheckpointError', 'InputNotFoundError', 'UntrustedCheckpointError', 'add_trusted_dir',
    'check_checkpoint_file', 'install_checkpoint_loader', 'load_checkpoint_file', 'register_all_modules',
    'setup_cpu_distributed', 'teardown_distributed'
]

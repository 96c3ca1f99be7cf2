"""mmsparse optimizer wrappers (registered in ``mmsparse.registry.OPTIM_WRAPPERS``)."""
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper']

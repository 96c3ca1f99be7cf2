"""mmsparse optimizer wrappers (registered in ``mmsparse.registry.OPTIM_WRAPPERS``)."""
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .svite_optim_wrapper import AmpSViTEOptimWrapper, CPUAmpSViTEOptimWrapper, SViTEOptimWrapper

__all__ = ['CPUAmpOptimWrapper', 'SViTEOptimWrapper', 'AmpSViTEOptimWrapper', 'CPUAmpSViTEOptimWrapper']

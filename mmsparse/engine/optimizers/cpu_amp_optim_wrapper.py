"""bf16 autocast on CPU: what ``--amp`` means when there is no GPU."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from mmsparse.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Optimizer wrapper that runs forward under ``torch.autocast('cpu', dtype)``.

    mmengine's ``AmpOptimWrapper`` asserts a GPU/NPU/MLU/MUSA device. bf16 keeps fp32's exponent
    range, so unlike fp16 no loss scaling is needed and ``update_params`` stays the parent's.

    Args:
        dtype (str): ``'bfloat16'`` (default) or ``'float16'``.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f'CPUAmpOptimWrapper: dtype must be "bfloat16" or "float16", got {dtype!r}')
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(device_type='cpu', dtype=self.cast_dtype):
            yield

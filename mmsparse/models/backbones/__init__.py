"""Sparse ViT backbones. Each module registers itself in ``mmsparse.registry.MODELS``."""
from .sparse_deit import SparseDeiT, SparseDistilledDeiT  # noqa
from .sparse_swin import SparseSwin  # noqa
from .swin_block_timer import SwinBlockTimer, measure_swin_lut  # noqa

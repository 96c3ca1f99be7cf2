"""MACs of what a call actually executes, by ``torch.utils.flop_counter.FlopCounterMode``.

torch's formula table has no entry for the CPU fused attention kernel that SparseSwin's window path
and SparseDeiT use (``_scaled_dot_product_flash_attention_for_cpu``); :func:`count_macs` adds it with
the formula of the other attention kernels, so that the count covers every matmul, conv and attention.
"""
import torch

__all__ = ['count_macs', 'attention_flops']


def attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """FLOPs of attention ``(B, h, Lq, d) x (B, h, Lk, d) -> (B, h, Lq, dv)``: QK^T and A.V."""
    b, h, lq, d = query_shape
    lk, dv = key_shape[-2], value_shape[-1]
    return 2 * b * h * lq * lk * (d + dv)


def count_macs(fn) -> int:
    """Multiply-adds of ``fn()`` (FlopCounterMode counts 2 FLOPs per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode
    mapping = {}
    cpu_sdpa = getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)
    if cpu_sdpa is not None:
        mapping[cpu_sdpa] = attention_flops
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return counter.get_total_flops() // 2

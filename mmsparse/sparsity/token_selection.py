"""Gumbel-softmax straight-through top-k token selection (SViTE+, docs/method/svite.md, 3.1).

Given one score per patch token:

1. l = log_softmax(s); g i.i.d. standard Gumbel;
2. y_soft = softmax((l + g) / tau); idx = top-k of (l + g) (the same set for every tau > 0);
3. y = y_hard + (y_soft - stopgrad(y_soft)): forward values exactly 0/1, gradients of y_soft.

At inference there is no noise: idx = top-k of s. Kept tokens are gathered in ascending original index
and the extra (class / distillation) tokens are always prepended, so every image keeps the same count.
"""
import math
from typing import Optional, Tuple

import torch

__all__ = [
    'check_keep_ratio', 'num_tokens_from_keep_ratio', 'gumbel_noise', 'gumbel_topk_st', 'topk_indices',
    'gather_tokens', 'temperature'
]


def check_keep_ratio(keep_ratio: float, field: str = 'keep_ratio') -> float:
    """``float(keep_ratio)`` or ``ValueError`` naming ``field`` if not in (0, 1]."""
    if isinstance(keep_ratio, bool) or not isinstance(keep_ratio, (int, float)) \
            or not 0.0 < float(keep_ratio) <= 1.0 or math.isnan(float(keep_ratio)):
        raise ValueError(f'`{field}` must be a number in (0, 1], got {keep_ratio!r}')
    return float(keep_ratio)


def num_tokens_from_keep_ratio(keep_ratio: float, total_tokens: int, num_extra_tokens: int = 1) -> int:
    """Tokens entering the blocks for a kept fraction: floor(total * ratio + 0.5), at least extra + 1.

    Matches the paper's data-sparsity levels s with ratio = 1 - s (docs/method/svite.md, 3.3): 0.95 ->
    187, 0.9 -> 177, 0.7 -> 138, 0.5 -> 99 for 197 tokens.
    """
    keep_ratio = check_keep_ratio(keep_ratio)
    return max(num_extra_tokens + 1, int(math.floor(total_tokens * keep_ratio + 0.5)))


def gumbel_noise(shape,
                 generator: Optional[torch.Generator] = None,
                 device=None,
                 dtype=torch.float32) -> torch.Tensor:
    """Standard Gumbel draws -log(E), E ~ Exp(1), clamped away from 0 and inf."""
    e = torch.empty(shape, dtype=dtype, device=device).exponential_(generator=generator)
    tiny = torch.finfo(dtype).tiny
    return -e.clamp(min=tiny).log()


def topk_indices(values: torch.Tensor, k: int, stable: Optional[bool] = None) -> torch.Tensor:
    """Top-k positions along the last dim, returned in ascending index order; (..., P) -> (..., k).

    ``stable=True``: a stable sort, ties go to the lower index, deterministically (training, eager).
    ``stable=False``: two ``torch.topk`` with a constant ``k`` (largest values, then ascending
    positions), the same set except among exactly equal values; it exports to ONNX ``TopK`` with a
    static output shape, which ``Sort`` does not. ``None`` (default): ``False`` only while
    ``torch.onnx.export`` or ``torch.export`` traces the model.
    """
    if stable is None:
        stable = not (torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting())
    if not stable:
        idx = torch.topk(values, k, dim=-1, largest=True, sorted=False).indices
        return torch.topk(idx, k, dim=-1, largest=False, sorted=True).values
    idx = torch.sort(values, dim=-1, descending=True, stable=True).indices[..., :k]
    return idx.sort(dim=-1).values


def gumbel_topk_st(scores: torch.Tensor,
                   k: int,
                   tau: float = 1.0,
                   noise: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Straight-through Gumbel top-k.

    Args:
        scores: (B, P) scorer outputs.
        k: tokens to keep, 1 <= k <= P.
        tau: temperature > 0; changes only the gradient, never the selection.
        noise: (B, P) Gumbel noise to use (tests, or zeros for a noiseless pass); drawn if None.
        generator: RNG for the noise.

    Returns:
        y: (B, P), forward values exactly 0/1 (1 at the selected tokens), gradient of y_soft;
        idx: (B, k) int64 selected positions in ascending order.
    """
    if not 1 <= k <= scores.shape[-1]:
        raise ValueError(f'k must be in [1, {scores.shape[-1]}], got {k}')
    if not tau > 0:
        raise ValueError(f'`tau` must be > 0, got {tau!r}')
    logp = torch.log_softmax(scores.float(), dim=-1)
    if noise is None:
        noise = gumbel_noise(scores.shape, generator, scores.device)
    perturbed = logp + noise
    y_soft = torch.softmax(perturbed / tau, dim=-1)
    idx = topk_indices(perturbed.detach(), k)
    y_hard = torch.zeros_like(y_soft).scatter_(-1, idx, 1.0)
    # y_hard + (y_soft - sg(y_soft)) is exactly y_hard forward (x - x == 0), unlike the other order
    y = y_hard + (y_soft - y_soft.detach())
    return y.to(scores.dtype), idx


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, P, C), idx (B, k) -> (B, k, C)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def temperature(t: int, t_total: int, tau: Tuple[float, float] = (10.0, 0.1)) -> float:
    """Linear schedule tau(t) = start + (end - start) t / T_total, default 10 -> 0.1
    (docs/method/svite.md, 3.2)."""
    start, end = tau
    if not (start > 0 and end > 0):
        raise ValueError(f'`tau` must be two numbers > 0, got {tau!r}')
    if t_total < 1:
        raise ValueError(f'`t_total` must be >= 1, got {t_total!r}')
    return start + (end - start) * min(max(t, 0), t_total) / t_total

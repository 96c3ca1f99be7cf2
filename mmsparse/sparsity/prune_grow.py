"""Prune-and-grow selection and its schedule (docs/method/svite.md, 1.3, 1.4, 2.5). Pure functions.

Selection is by index, never by threshold: exactly ``k`` entries are pruned and ``k`` grown, ties are
broken by flat index (stable sort), so a layer's active count never drifts (the reference code's
``|w| > tau`` thresholding over-prunes on ties).

Schedules return the prune fraction r(t) for optimizer step t (counted from 1):

- ``cosine_reference`` (default, reference code): r = r_min + (alpha - r_min)(1 + cos(pi t / T_total)) / 2
- ``cosine_t_end`` (paper, Algorithm 1): r = alpha / 2 * (1 + cos(pi t / T_end))
- ``constant``: r = alpha

and updates happen at t in {dT, 2 dT, ...} with t < T_end.
"""
import math
from typing import Optional, Tuple, Union

import torch

__all__ = [
    'DECAY_MODES', 'resolve_t_end', 'prune_rate', 'prune_count', 'select_smallest', 'select_largest',
    'select_random', 'magnitude_prune', 'gradient_grow', 'prune_and_grow', 'unit_prune_and_grow'
]

DECAY_MODES = ('cosine_reference', 'cosine_t_end', 'constant')


def resolve_t_end(t_end: Union[int, float], t_total: int) -> int:
    """Turn the ``t_end`` config value into a step count.

    Args:
        t_end: int >= 1 = steps; float in (0, 1] = fraction of ``t_total``.
        t_total: total optimizer steps of the run (>= 1).

    Returns:
        T_end in steps; updates happen only at t < T_end.
    """
    if isinstance(t_total, bool) or not isinstance(t_total, int) or t_total < 1:
        raise ValueError(f'`t_total` must be an int >= 1, got {t_total!r}')
    if isinstance(t_end, bool):
        raise ValueError(f'`t_end` must be an int >= 1 or a float in (0, 1], got {t_end!r}')
    if isinstance(t_end, int):
        if t_end < 1:
            raise ValueError(f'`t_end` must be an int >= 1 or a float in (0, 1], got {t_end!r}')
        return t_end
    if isinstance(t_end, float) and 0.0 < t_end <= 1.0:
        # round, not floor: 0.8 * 1_501_200 is 1_200_959.99... in binary floating point
        return int(round(t_end * t_total))
    raise ValueError(f'`t_end` must be an int >= 1 or a float in (0, 1], got {t_end!r}')


def prune_rate(t: int,
               decay: str = 'cosine_reference',
               death_rate: float = 0.5,
               t_end: Optional[int] = None,
               t_total: Optional[int] = None,
               min_death_rate: float = 0.005) -> float:
    """Prune fraction r(t) (the paper's f_decay) at optimizer step ``t``.

    Args:
        t: optimizer step, counted from 1.
        decay: one of ``DECAY_MODES``.
        death_rate: alpha, in (0, 1).
        t_end: T_end in steps (needed by ``cosine_t_end``).
        t_total: T_total in steps (needed by ``cosine_reference``).
        min_death_rate: r_min of ``cosine_reference``, in [0, death_rate).

    Returns:
        r(t) as a float (fraction of a layer's active weights / units to replace).
    """
    if not 0.0 < death_rate < 1.0:
        raise ValueError(f'`death_rate` must be in (0, 1), got {death_rate!r}')
    if decay == 'constant':
        return float(death_rate)
    if decay == 'cosine_t_end':
        if not t_end:
            raise ValueError("`t_end` (steps >= 1) is required by decay='cosine_t_end'")
        return death_rate / 2.0 * (1.0 + math.cos(math.pi * t / t_end))
    if decay == 'cosine_reference':
        if not t_total:
            raise ValueError("`t_total` (steps >= 1) is required by decay='cosine_reference'")
        if not 0.0 <= min_death_rate < death_rate:
            raise ValueError(
                f'`min_death_rate` must be in [0, death_rate={death_rate}), got {min_death_rate!r}')
        return min_death_rate + (death_rate - min_death_rate) * \
            (1.0 + math.cos(math.pi * t / t_total)) / 2.0
    raise ValueError(f'`decay` must be one of {DECAY_MODES}, got {decay!r}')


def prune_count(rate: float, n_active: int) -> int:
    """k = ceil(rate * n_active): how many active entries/units an update replaces."""
    return int(math.ceil(rate * n_active)) if rate > 0 else 0


def select_smallest(scores: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` smallest ``scores`` among ``candidates`` (ties: lower index first).

    Args:
        scores: any shape, real valued.
        candidates: bool, same shape; only True positions can be chosen.
        k: how many to choose (<= number of candidates).

    Returns:
        int64 (k,) flat indices, in selection order.
    """
    flat = scores.detach().flatten().float()
    cand = candidates.flatten()
    if k > int(cand.sum()):
        raise ValueError(f'cannot select {k} of {int(cand.sum())} candidates')
    flat = torch.where(cand, flat, torch.full_like(flat, float('inf')))
    order = torch.sort(flat, stable=True).indices
    # non-candidates sit at +inf, but a candidate could be +inf too: filter explicitly
    order = order[cand[order]]
    return order[:k]


def select_largest(scores: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` largest ``scores`` among ``candidates`` (ties: lower index first)."""
    flat = scores.detach().flatten().float()
    cand = candidates.flatten()
    if k > int(cand.sum()):
        raise ValueError(f'cannot select {k} of {int(cand.sum())} candidates')
    flat = torch.where(cand, flat, torch.full_like(flat, float('-inf')))
    order = torch.sort(flat, descending=True, stable=True).indices
    order = order[cand[order]]
    return order[:k]


def select_random(candidates: torch.Tensor,
                  k: int,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``k`` flat indices drawn uniformly without replacement among ``candidates``."""
    cand_idx = torch.nonzero(candidates.flatten().cpu(), as_tuple=False).flatten()
    if k > cand_idx.numel():
        raise ValueError(f'cannot select {k} of {cand_idx.numel()} candidates')
    perm = torch.randperm(cand_idx.numel(), generator=generator)[:k]
    return cand_idx[perm].to(candidates.device)


def magnitude_prune(weight: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """New mask with the ``k`` active entries of smallest |w| switched off (docs/method/svite.md, 1.4)."""
    drop = select_smallest(weight.abs(), mask, k)
    new = mask.clone().flatten()
    new[drop] = False
    return new.view_as(mask)


def gradient_grow(score: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """New mask with the ``k`` inactive entries of largest ``score`` switched on
    (docs/method/svite.md, 1.4)."""
    grow = select_largest(score, ~mask, k)
    new = mask.clone().flatten()
    new[grow] = True
    return new.view_as(mask)


def prune_and_grow(weight: torch.Tensor,
                   grad: Optional[torch.Tensor],
                   mask: torch.Tensor,
                   rate: float,
                   growth: str = 'gradient',
                   generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, int]:
    """One unstructured update of one layer: prune k = ceil(rate * nnz) by |w|, grow k back.

    Args:
        weight: the layer's weight (any shape); only read.
        grad: dense gradient of the finished step (same shape); needed for ``growth='gradient'``.
        mask: bool, same shape; current active set.
        rate: r(t).
        growth: 'gradient' (|grad|, the paper's) or 'random' (uniform among post-prune inactive).
        generator: RNG for ``growth='random'``.

    Returns:
        (new mask, k). Candidates for growth include the just-pruned positions; nnz is unchanged.
    """
    if mask.dtype != torch.bool or mask.shape != weight.shape:
        raise ValueError('`mask` must be a bool tensor shaped like `weight`')
    k = prune_count(rate, int(mask.sum()))
    if k == 0:
        return mask.clone(), 0
    pruned = magnitude_prune(weight, mask, k)
    if growth == 'gradient':
        if grad is None:
            raise ValueError("growth='gradient' needs the layer's gradient, got None")
        return gradient_grow(grad.abs(), pruned, k), k
    if growth == 'random':
        new = pruned.clone().flatten()
        new[select_random(~pruned, k, generator)] = True
        return new.view_as(mask), k
    raise ValueError(f"`growth` must be 'gradient' or 'random', got {growth!r}")


def unit_prune_and_grow(mask: torch.Tensor,
                        prune_score: torch.Tensor,
                        grow_score: Optional[torch.Tensor],
                        rate: float,
                        growth: str = 'gradient',
                        generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, int]:
    """One structured update of one block's units (heads or MLP neurons), docs/method/svite.md, 2.5.

    Args:
        mask: (U,) bool, active units.
        prune_score: (U,) importance (S_h for heads, M_j for neurons); the k lowest active go.
        grow_score: (U,) growth score (R_h, g_j); the k highest post-prune inactive come back.
        rate: r(t); k = ceil(rate * #active).
        growth: 'gradient' or 'random' (uniform among units inactive *before* this update,
            the exploring variant of docs/method/svite.md, 2.3; falls back to the just-pruned units if
            too few).
        generator: RNG for 'random'.

    Returns:
        (new (U,) bool mask with the same count, k).
    """
    k = prune_count(rate, int(mask.sum()))
    if k == 0:
        return mask.clone(), 0
    new = mask.clone()
    drop = select_smallest(prune_score, mask, k)
    new[drop] = False
    if growth == 'gradient':
        if grow_score is None:
            raise ValueError("growth='gradient' needs a growth score, got None")
        new[select_largest(grow_score, ~new, k)] = True
    elif growth == 'random':
        fresh = ~mask
        if int(fresh.sum()) >= k:
            new[select_random(fresh, k, generator)] = True
        else:  # not enough never-active units: the rest comes from the just-pruned ones
            new[fresh] = True
            rest = k - int(fresh.sum())
            just_pruned = torch.zeros_like(mask)
            just_pruned[drop] = True
            new[select_random(just_pruned, rest, generator)] = True
    else:
        raise ValueError(f"`growth` must be 'gradient' or 'random', got {growth!r}")
    return new, k

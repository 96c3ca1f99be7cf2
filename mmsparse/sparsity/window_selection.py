"""Window selection for SparseViT (docs/method/sparsevit.md, 2): geometry, kept counts, scores, rankings.

Layout conventions used throughout:

* a stage map of ``H x W`` tokens is zero-padded at the bottom/right to ``Hp x Wp`` (multiples of the
  window size ``ws``); a *spatial flat index* of a padded token is ``row * Wp + col``;
* windows are numbered row-major on the padded grid; the shifted partition is the partition of the
  map rolled by ``(-shift, -shift)``, numbered the same way;
* ``token_index(..., shift)`` maps (window, token-in-window) to the spatial flat index, so both
  partitions are plain gathers from one spatial buffer and need no roll/pad/partition copies.
"""
import math
from typing import NamedTuple, Optional, Sequence

import torch

__all__ = [
    'StageGeometry', 'stage_geometry', 'stage_hw', 'num_kept_windows', 'first_pruned_block', 'token_index',
    'token_scores', 'window_scores', 'rank_windows', 'top_windows', 'flat_token_index', 'shifted_window_mask',
    'SCORE_MODES', 'KEEP_ROUNDINGS'
]

SCORE_MODES = ('token_mean_abs_l2', 'window_l2')
KEEP_ROUNDINGS = ('exact', 'reference_float')


class StageGeometry(NamedTuple):
    """Padded window grid of one stage map (all counts in tokens or windows)."""
    height: int
    width: int
    pad_b: int
    pad_r: int
    padded_height: int
    padded_width: int
    num_windows: int

    @property
    def padded(self) -> bool:
        return self.pad_b > 0 or self.pad_r > 0


def stage_geometry(height: int, width: int, window_size: int = 7) -> StageGeometry:
    """Padding and window count of an ``height x width`` token map (docs/method/sparsevit.md, 2.1).

    ``pad_b = (ws - H % ws) % ws``, ``nW = (Hp / ws) * (Wp / ws)``; the shifted partition has the same nW.
    """
    pad_b = (window_size - height % window_size) % window_size
    pad_r = (window_size - width % window_size) % window_size
    hp, wp = height + pad_b, width + pad_r
    return StageGeometry(height, width, pad_b, pad_r, hp, wp, (hp // window_size) * (wp // window_size))


def stage_hw(image_hw, stage: int, patch_size: int = 4):
    """Token map size of ``stage`` for an image of ``image_hw`` pixels: ``ceil(ceil(H/P) / 2**s)``."""
    h = math.ceil(image_hw[0] / patch_size)
    w = math.ceil(image_hw[1] / patch_size)
    for _ in range(stage):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


def num_kept_windows(num_windows: int, ratio: float, rounding: str = 'exact', min_keep: int = 0) -> int:
    """Windows a block processes per image: ``k = floor(nW * (1 - r))`` (docs/method/sparsevit.md, 2.2).

    ``'exact'`` is ``floor(nW * (1 - r) + 1e-6)`` in float64, so ``nW=65, r=0.8`` gives 13 even though
    ``1 - 0.8`` is inexact; ``'reference_float'`` truncates the float64 product like the reference code
    (12 there). ``min_keep`` (0 or 1) clamps k from below, e.g. to keep every parameter used under DDP.
    """
    if rounding not in KEEP_ROUNDINGS:
        raise ValueError(f'keep_rounding must be one of {KEEP_ROUNDINGS}, got {rounding!r}')
    if min_keep not in (0, 1):
        raise ValueError(f'min_keep must be 0 or 1, got {min_keep!r}')
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'pruning ratio must be in [0, 1), got {ratio!r}')
    if rounding == 'exact':
        # the epsilon absorbs the binary error of 1 - r; nW * (1 - r) is far below 1e6 windows
        k = math.floor(num_windows * (1.0 - float(ratio)) + 1e-6)
    else:
        k = int(num_windows * (1.0 - float(ratio)))
    return min(num_windows, max(k, min_keep))


def first_pruned_block(ratios: Sequence[float], force_window_path: bool = False) -> Optional[int]:
    """b*: the first block of a stage with r > 0, where the window path starts (docs/method/sparsevit.md,
    2.3); 0 when the window path is forced, ``None`` for a dense stage."""
    if force_window_path:
        return 0
    return next((i for i, r in enumerate(ratios) if r > 0), None)


def token_index(geometry: StageGeometry,
                window_size: int,
                shift: int = 0,
                device: Optional[torch.device] = None) -> torch.Tensor:
    """Spatial flat index of each token of each window, ``(nW, ws*ws)`` int64.

    With ``shift > 0`` the windows are those of the map rolled by ``(-shift, -shift)``: window token
    ``(i, j)`` of the rolled map sits at padded position ``((i + shift) % Hp, (j + shift) % Wp)``.
    """
    hp, wp, ws = geometry.padded_height, geometry.padded_width, window_size
    rows = (torch.arange(hp, device=device) + shift) % hp
    cols = (torch.arange(wp, device=device) + shift) % wp
    grid = rows[:, None] * wp + cols[None, :]  # (Hp, Wp): source position of rolled pixel
    grid = grid.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3)
    return grid.reshape(-1, ws * ws).contiguous()


def token_scores(x: torch.Tensor, score_mode: str = 'token_mean_abs_l2') -> torch.Tensor:
    """Squared per-token contribution to a window score, ``(B, L, C) -> (B, L)``.

    ``'token_mean_abs_l2'``: ``m_t**2`` with ``m_t = mean_c |x_tc|`` (the reference's score);
    ``'window_l2'``: ``sum_c x_tc**2`` (L2 of the whole window tensor). Summing over a window and taking
    the square root gives the window score of docs/method/sparsevit.md, 2.3. Computed without gradient.
    """
    if score_mode not in SCORE_MODES:
        raise ValueError(f'score_mode must be one of {SCORE_MODES}, got {score_mode!r}')
    with torch.no_grad():
        if score_mode == 'token_mean_abs_l2':
            return x.abs().mean(-1).square()
        return x.square().sum(-1)


def window_scores(token_sq: torch.Tensor, geometry: StageGeometry, index: torch.Tensor) -> torch.Tensor:
    """Per-window L2 scores ``(B, nW)`` from per-token squares ``(B, H*W)`` of an unpadded map.

    Padded tokens score 0. ``index`` is :func:`token_index` of the partition (regular or shifted).
    """
    b = token_sq.shape[0]
    sq = token_sq.reshape(b, geometry.height, geometry.width)
    if geometry.padded:
        sq = torch.nn.functional.pad(sq, (0, geometry.pad_r, 0, geometry.pad_b))
    sq = sq.reshape(b, -1)
    return sq[:, index].sum(-1).sqrt()


def rank_windows(scores: torch.Tensor) -> torch.Tensor:
    """Window indices of each image by descending score, ties broken by lower index: ``(B, nW)`` int64."""
    return torch.sort(scores, dim=1, descending=True, stable=True).indices


def top_windows(scores: torch.Tensor, k: int, stable: bool = True) -> torch.Tensor:
    """The ``k`` best windows of each image, best first: ``(B, nW) -> (B, k)`` int64.

    ``stable=True`` is the prefix of :func:`rank_windows` (equal scores: lower index first), used in
    training and eager inference. ``stable=False`` is ``torch.topk`` with a constant ``k``: the same
    windows in the same order except among exactly equal scores, and it exports to ONNX ``TopK``
    (static output shape, no ``Sort``), which the stable sort does not.
    """
    if stable:
        return rank_windows(scores)[:, :k]
    return torch.topk(scores, k, dim=1, largest=True, sorted=True).indices


def flat_token_index(kept: torch.Tensor, index: torch.Tensor, tokens_per_image: int) -> torch.Tensor:
    """Rows of a flat ``(B * Hp * Wp, C)`` buffer holding the kept windows' tokens, ``(B * k * ws*ws,)``.

    Args:
        kept: ``(B, k)`` window ids per image (a prefix of :func:`rank_windows`).
        index: ``(nW, ws*ws)`` :func:`token_index` of the same partition.
        tokens_per_image: ``Hp * Wp``.

    ``buffer.index_select(0, idx).view(B, k, ws*ws, C)`` gathers the windows in ``kept`` order and
    ``buffer.index_copy_(0, idx, y.view(-1, C))`` scatters them back.
    """
    b = kept.shape[0]
    offsets = torch.arange(b, device=kept.device).mul_(tokens_per_image).view(b, 1, 1)
    return (index[kept] + offsets).reshape(-1)


def shifted_window_mask(geometry: StageGeometry,
                        window_size: int,
                        shift: int,
                        device=None,
                        dtype=torch.float32) -> torch.Tensor:
    """Swin's SW-MSA mask ``(nW, ws*ws, ws*ws)``: -100 between tokens of different regions, else 0.

    Regions are the row bands ``[0, Hp-ws)``, ``[Hp-ws, Hp-shift)``, ``[Hp-shift, Hp)`` crossed with the
    same column bands, on the rolled padded grid (docs/method/sparsevit.md, 2.5). Window ``w`` of the
    shifted partition (same numbering as :func:`token_index` with ``shift``).
    """
    hp, wp, ws = geometry.padded_height, geometry.padded_width, window_size

    def bands(n):
        ids = torch.zeros(n, dtype=torch.long, device=device)
        ids[n - ws:n - shift] = 1
        ids[n - shift:] = 2
        return ids

    region = (bands(hp)[:, None] * 3 + bands(wp)[None, :])
    region = region.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = region[:, None, :] != region[:, :, None]
    return torch.zeros(diff.shape, dtype=dtype, device=device).masked_fill_(diff, -100.0)

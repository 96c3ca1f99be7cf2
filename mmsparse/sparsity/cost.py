"""MACs of a (sparse) Swin backbone: plain integer arithmetic, no torch.

Counting rules (docs/method/sparsevit.md, 4), per image, 1 MAC = one multiply-add:

* patch embed: ``H0 * W0 * (3 * P * P) * C0`` with ``H0 = ceil(H / P)``;
* block of stage ``s`` keeping ``k`` windows of ``N = ws * ws`` tokens:
  ``k * N * ((4 + 2 * mlp_ratio) * C^2 + 2 * N * C)`` (qkv 3C^2, proj C^2, FFN 2*mlp*C^2, QK^T and A.V
  N*C each), counted over whole **padded** windows;
* PatchMerging after stage ``s``: ``ceil(h/2) * ceil(w/2) * 4C * 2C``.

``convention='core'`` is the sum above. ``convention='paper'`` adds 1 MAC per output element of every
affine LayerNorm (norm1/norm2 on the kept padded windows, the patch-embed norm, the merge norms and the
output norms ``norm{s}`` of ``out_indices``) and of the q-scaling multiply on the kept padded windows.
That convention was inferred from the paper's tables; it reproduces them to the printed 0.1 G.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

from .window_selection import num_kept_windows, stage_geometry

__all__ = ['swin_macs', 'swin_macs_breakdown', 'block_macs_per_window']

SWIN_T_DEPTHS = (2, 2, 6, 2)


def block_macs_per_window(channels: int,
                          window_size: int = 7,
                          mlp_ratio: float = 4,
                          convention: str = 'core') -> int:
    """MACs of one Swin block on one window (``window_size**2`` tokens of ``channels`` features).

    Swin-T at window 7, core: 5,880,000 (C=96), 22,598,016 (C=192), 88,548,096 (C=384),
    350,504,448 (C=768).
    """
    _check_convention(convention)
    n = window_size * window_size
    dense = int(round((4 + 2 * mlp_ratio) * channels * channels)) + 2 * n * channels
    macs = n * dense
    if convention == 'paper':
        # norm1, norm2 and the q-scaling multiply: one MAC per output element each
        macs += 3 * n * channels
    return macs


def swin_macs_breakdown(shape: Tuple[int, int],
                        ratios: Optional[Sequence[Sequence[float]]] = None,
                        embed_dims: int = 96,
                        depths: Sequence[int] = SWIN_T_DEPTHS,
                        window_size: int = 7,
                        patch_size: int = 4,
                        mlp_ratio: float = 4,
                        in_channels: int = 3,
                        out_indices: Sequence[int] = (0, 1, 2, 3),
                        convention: str = 'core',
                        keep_rounding: str = 'exact',
                        min_keep: int = 0) -> Dict[str, object]:
    """Per-part MACs of one image through a Swin backbone.

    Args:
        shape: input image ``(H, W)`` in pixels (before patch embedding).
        ratios: per-stage lists of per-block pruning ratios (fraction of windows skipped), or ``None``
            for dense. Not validated here beyond lengths; see ``mmsparse.sparsity.ratios``.
        embed_dims: C0, channels of stage 0; stage ``s`` has ``C0 * 2**s``.

    Returns:
        dict with ``patch_embed`` (int), ``blocks`` (list per stage of list per block of int),
        ``kept`` (same nesting, kept windows per block), ``num_windows`` (nW per stage),
        ``merges`` (int per merge), ``norms`` (int, paper convention only, else 0) and ``total``.
    """
    _check_convention(convention)
    depths = tuple(int(d) for d in depths)
    if ratios is None:
        ratios = [[0.0] * d for d in depths]
    if len(ratios) != len(depths) or any(len(r) != d for r, d in zip(ratios, depths)):
        raise ValueError(f'ratios must have one list per stage with depths {depths} entries, '
                         f'got {ratios}')
    paper = convention == 'paper'
    h = math.ceil(shape[0] / patch_size)
    w = math.ceil(shape[1] / patch_size)
    c = embed_dims
    patch_embed = h * w * in_channels * patch_size * patch_size * c
    norms = h * w * c if paper else 0  # patch-embed norm (patch_norm=True in every Swin config)
    blocks: List[List[int]] = []
    kept: List[List[int]] = []
    num_windows: List[int] = []
    merges: List[int] = []
    for s, depth in enumerate(depths):
        geo = stage_geometry(h, w, window_size)
        num_windows.append(geo.num_windows)
        per_window = block_macs_per_window(c, window_size, mlp_ratio, convention)
        ks = [num_kept_windows(geo.num_windows, r, keep_rounding, min_keep) for r in ratios[s]]
        kept.append(ks)
        blocks.append([k * per_window for k in ks])
        if paper and s in out_indices:
            norms += h * w * c
        if s < len(depths) - 1:
            h2, w2 = math.ceil(h / 2), math.ceil(w / 2)
            merges.append(h2 * w2 * 4 * c * 2 * c)
            if paper:
                norms += h2 * w2 * 4 * c
            h, w, c = h2, w2, 2 * c
    total = patch_embed + sum(map(sum, blocks)) + sum(merges) + norms
    return dict(
        patch_embed=patch_embed,
        blocks=blocks,
        kept=kept,
        num_windows=num_windows,
        merges=merges,
        norms=norms,
        total=total)


def swin_macs(shape: Tuple[int, int],
              ratios: Optional[Sequence[Sequence[float]]] = None,
              batch: int = 1,
              **kwargs) -> int:
    """Total MACs of ``batch`` images (or cameras) of size ``shape`` through a Swin backbone.

    ``batch`` is the multiplier of the paper's tables: 4 for Table 2 (batch 4), 6 for Table 1
    (6 cameras). Other keyword arguments as in :func:`swin_macs_breakdown`.

    Example: ``swin_macs((672, 672))`` is 40,408,... (40.408 G) for Swin-T.
    """
    if int(batch) != batch or batch < 1:
        raise ValueError(f'batch must be an integer >= 1, got {batch}')
    return int(batch) * swin_macs_breakdown(shape, ratios, **kwargs)['total']


def _check_convention(convention: str) -> None:
    if convention not in ('core', 'paper'):
        raise ValueError(f"convention must be 'core' or 'paper', got {convention!r}")

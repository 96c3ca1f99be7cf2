"""Do the kept windows land on objects? Object recall of a stage's window selection.

For one image and one block, the *object recall* is the fraction of ground-truth object pixels that
lie inside the windows the block processes. A stage's recall is the mean over its blocks on the window
path (a dense stage scores 1). The baseline draws, per block, the same number of windows uniformly at
random from the same partition; its expected recall is exactly ``k / nW`` (every window is drawn with
probability ``k / nW``, and the object pixels are split among the windows), so a selection that looks
at objects scores well above ``k / nW`` and one that ignores them scores about that.

Geometry: stage ``s`` of a Swin with patch size 4 has one token per ``4 * 2**s`` pixels, the token map
is zero-padded at the bottom/right to whole windows, and window ids are those of
:func:`mmsparse.sparsity.window_selection.token_index` (regular or shifted partition).
"""
from typing import List, NamedTuple, Optional, Sequence

import torch

from .window_selection import StageGeometry, token_index

__all__ = [
    'StageRecall', 'kept_token_mask', 'token_to_pixel_mask', 'object_recall', 'random_windows',
    'stage_object_recall'
]


class StageRecall(NamedTuple):
    """Per-image recalls of one stage, each ``(B,)`` float (NaN for an image without object pixels).

    Attributes:
        kept: recall of the model's selection, mean over the stage's window-path blocks.
        random: recall of random selections of the same sizes (mean over blocks and draws).
        chance: ``mean_b k_b / nW``, the random baseline's expected value.
    """
    kept: torch.Tensor
    random: torch.Tensor
    chance: float


def kept_token_mask(kept: torch.Tensor,
                    geometry: StageGeometry,
                    window_size: int,
                    shift: int = 0) -> torch.Tensor:
    """Which padded tokens lie in the kept windows: ``(B, k)`` window ids -> ``(B, Hp, Wp)`` bool.

    ``kept`` uses the numbering of the partition with ``shift`` (0 = regular windows).
    """
    index = token_index(geometry, window_size, shift, device=kept.device)  # (nW, ws*ws)
    b = kept.shape[0]
    flat = torch.zeros(
        b, geometry.padded_height * geometry.padded_width, dtype=torch.bool, device=kept.device)
    if kept.numel():
        flat.scatter_(1, index[kept].reshape(b, -1), True)
    return flat.view(b, geometry.padded_height, geometry.padded_width)


def token_to_pixel_mask(tokens: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
    """Each token covers a ``stride x stride`` pixel block: ``(B, h, w)`` -> ``(B, height, width)``.

    Token rows/columns beyond the image (padding) are cropped away.
    """
    up = tokens.repeat_interleave(stride, dim=1).repeat_interleave(stride, dim=2)
    if up.shape[1] < height or up.shape[2] < width:
        raise ValueError(f'token map {tuple(tokens.shape[1:])} at stride {stride} covers '
                         f'{tuple(up.shape[1:])} pixels, less than the image ({height}, {width})')
    return up[:, :height, :width]


def object_recall(pixel_kept: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
    """Fraction of object pixels that are kept, per image: two ``(B, H, W)`` bool -> ``(B,)`` float.

    NaN for an image without object pixels (recall is undefined there, not 0 or 1).
    """
    if pixel_kept.shape != objects.shape:
        raise ValueError(f'kept mask {tuple(pixel_kept.shape)} and object mask '
                         f'{tuple(objects.shape)} must have the same (B, H, W) shape')
    objects = objects.bool()
    total = objects.flatten(1).sum(1).double()
    hit = (objects & pixel_kept.bool()).flatten(1).sum(1).double()
    return torch.where(total > 0, hit / total.clamp_min(1), torch.full_like(total, float('nan')))


def random_windows(num_windows: int,
                   k: int,
                   batch: int,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``k`` distinct windows per image drawn uniformly from ``num_windows``: ``(batch, k)`` int64."""
    if not 0 <= k <= num_windows:
        raise ValueError(f'k must be in [0, {num_windows}] (the number of windows), got {k}')
    return torch.rand(batch, num_windows, generator=generator).argsort(dim=1)[:, :k]


def stage_object_recall(selection: Sequence[Optional[torch.Tensor]],
                        shifts: Sequence[int],
                        geometry: StageGeometry,
                        window_size: int,
                        stride: int,
                        objects: torch.Tensor,
                        num_draws: int = 8,
                        seed: int = 0) -> StageRecall:
    """Object recall of one stage's kept windows and of random windows of the same counts.

    Args:
        selection: per block, the ``(B, k)`` kept window ids, or ``None`` for a block on the dense path
            (``SparseSwin(record_selection=True).last_selection[stage]``).
        shifts: per block, the partition's shift in tokens (``block.attn.shift_size``).
        geometry: the stage's token map (``stage_geometry(h, w, window_size)``).
        window_size: tokens per window side.
        stride: pixels per token side at this stage (``4 * 2**stage`` for Swin's 4x4 patches).
        objects: ``(B, H, W)`` bool ground-truth object pixels of the images the model saw.
        num_draws: random selections per block (more draws: a less noisy baseline).
        seed: seed of the random selections (same seed, same baseline).

    Returns:
        :class:`StageRecall`. A stage whose blocks are all dense scores 1 for both.
    """
    if len(selection) != len(shifts):
        raise ValueError(f'selection has {len(selection)} blocks but shifts has {len(shifts)}')
    if num_draws < 1:
        raise ValueError(f'num_draws must be >= 1, got {num_draws}')
    b, height, width = objects.shape
    gen = torch.Generator().manual_seed(seed)
    kept_r: List[torch.Tensor] = []
    rand_r: List[torch.Tensor] = []
    chance: List[float] = []
    for kept, shift in zip(selection, shifts):
        if kept is None:
            continue
        if kept.shape[0] != b:
            raise ValueError(f'selection has {kept.shape[0]} images but objects has {b}')
        kept = kept.cpu()

        def recall(ids, shift=shift):
            tokens = kept_token_mask(ids, geometry, window_size, shift)
            return object_recall(token_to_pixel_mask(tokens, stride, height, width), objects)

        kept_r.append(recall(kept))
        k = kept.shape[1]
        draws = [recall(random_windows(geometry.num_windows, k, b, gen)) for _ in range(num_draws)]
        rand_r.append(torch.stack(draws).mean(0))
        chance.append(k / geometry.num_windows)
    if not kept_r:
        ones = torch.where(objects.flatten(1).any(1), 1.0, float('nan')).double()
        return StageRecall(ones, ones.clone(), 1.0)
    return StageRecall(torch.stack(kept_r).mean(0), torch.stack(rand_r).mean(0), sum(chance) / len(chance))

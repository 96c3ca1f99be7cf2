"""Forward of one Swin stage's blocks with window activation pruning (docs/method/sparsevit.md, 2).

Blocks before the stage's first pruned block b* run mmdet's own ``SwinBlock.forward`` (bit-identical to
dense Swin and just as fast). From b* on, the stage stays in one zero-padded spatial buffer
``(B * Hp * Wp, C)``; each block gathers its kept windows with one flat index (regular and shifted
partitions are both plain index maps into that buffer, so nothing is re-padded, rolled or partitioned),
runs the whole block on them and writes them back in place. Windows that are not kept are never touched,
which is SparseViT's copy-through (docs/method/sparsevit.md, 2.5), and their gradient is the identity.
"""
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.utils.checkpoint as cp

from mmsparse.sparsity.window_selection import (first_pruned_block, flat_token_index, num_kept_windows,
                                                shifted_window_mask, stage_geometry, token_index,
                                                token_scores, top_windows, window_scores)
from .swin_window_ops import block_on_windows, dense_block_inference, pad_fill_value, relative_position_bias

__all__ = [
    'WindowPathOptions', 'sparse_stage_forward', 'GeometryCache', 'WindowPath', 'window_block', 'dense_block',
    'first_pruned_block'
]


class WindowPathOptions(NamedTuple):
    """Switches of the pruned path (see ``SparseSwin``)."""
    score_mode: str = 'token_mean_abs_l2'
    pad_mode: str = 'dense'
    keep_rounding: str = 'exact'
    min_keep: int = 0
    force_window_path: bool = False
    fused_attention: bool = False


class GeometryCache:
    """Index maps, SW-MSA masks, validity masks and eval-mode biases, reused across forwards.

    Keys include the padded grid, the device and (for masks) the dtype; entries are constants of the
    geometry, so no selection state survives between forwards. Multi-scale training meets many grids,
    so the least recently used entries are evicted beyond ``max_entries`` (a stage-0 mask at 800x1333
    is 13 MB).
    """

    def __init__(self, max_entries: int = 64):
        self.tensors: 'OrderedDict[tuple, torch.Tensor]' = OrderedDict()
        self.bias: dict = {}
        self.max_entries = max_entries

    def _get(self, key, build):
        if torch.compiler.is_compiling():
            # the compiler would guard on the dict's keys and entries (and retrace whenever an entry
            # is added or evicted); built inside the graph, these index maps and masks are a few
            # small kernels that depend only on static shapes
            return build()
        hit = self.tensors.get(key)
        if hit is None:
            hit = self.tensors[key] = build()
            while len(self.tensors) > self.max_entries:
                self.tensors.popitem(last=False)
        else:
            self.tensors.move_to_end(key)
        return hit

    def token_index(self, geo, ws, shift, device):
        """``(nW, ws*ws)`` spatial index of each window's tokens, see ``window_selection.token_index``."""
        key = ('index', geo.padded_height, geo.padded_width, ws, shift, device)
        return self._get(key, lambda: token_index(geo, ws, shift, device))

    def mask(self, geo, ws, shift, device, dtype):
        """``(nW, ws*ws, ws*ws)`` SW-MSA mask of the shifted partition."""
        key = ('mask', geo.padded_height, geo.padded_width, ws, shift, device, dtype)
        return self._get(key, lambda: shifted_window_mask(geo, ws, shift, device, dtype))

    def valid(self, geo, device):
        """``(Hp * Wp,)`` bool, False at padded positions."""

        def build():
            v = torch.zeros(geo.padded_height, geo.padded_width, dtype=torch.bool, device=device)
            v[:geo.height, :geo.width] = True
            return v.view(-1)

        key = ('valid', geo.height, geo.width, geo.padded_height, geo.padded_width, device)
        return self._get(key, build)


def is_exporting() -> bool:
    """True while ``torch.onnx.export`` (either exporter) or ``torch.export`` traces the model."""
    return bool(torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting())


def dense_block(block: torch.nn.Module,
                x: torch.Tensor,
                hw_shape: Tuple[int, int],
                cache: GeometryCache,
                fused: bool = False) -> torch.Tensor:
    """mmdet's ``SwinBlock`` on the full map; without gradient, with cached mask and bias.

    Bit-identical to mmdet unless ``fused``: then, without gradient, the attention is
    ``F.scaled_dot_product_attention`` (see ``dense_block_inference``).
    """
    if torch.is_grad_enabled():
        if block.with_cp and x.requires_grad:
            # mmdet calls checkpoint without use_reentrant, which torch deprecates; same ops here
            return cp.checkpoint(_swin_block_ops, block, x, hw_shape, use_reentrant=False)
        return block(x, hw_shape)
    ws, shift = block.attn.window_size, block.attn.shift_size
    mask = None
    if shift > 0:
        # mmdet builds its mask in the default dtype on every call; same values, built once here
        mask = cache.mask(
            stage_geometry(hw_shape[0], hw_shape[1], ws), ws, shift, x.device, torch.get_default_dtype())
    bias = relative_position_bias(block.attn.w_msa, cache.bias)
    return dense_block_inference(block, x, hw_shape, bias, mask, fused)


def _swin_block_ops(block, x, hw_shape):
    """mmdet ``SwinBlock._inner_forward``: the same module calls in the same order."""
    y = block.attn(block.norm1(x), hw_shape) + x
    return block.ffn(block.norm2(y), identity=y)


class WindowPath:
    """A stage on the window path from b* on: the zero-padded buffer and the window rankings.

    Entering scores the tokens once (both parities' rankings come from this same map,
    docs/method/sparsevit.md, 2.4) and copies ``x`` into a private ``(B * Hp * Wp, C)`` buffer that
    :func:`window_block` updates in place.

    Args:
        x: ``(B, H * W, C)`` input of block b*.
        hw_shape: ``(H, W)``.
        window_size: the stage's window size.
        options, cache: as in :func:`sparse_stage_forward`.
        max_keep: ``{shift: k}``, the most windows any block of that parity keeps; a ranking then
            holds only that many (needed for a static-shape ``TopK`` when exporting). ``None``: full
            rankings.
    """

    def __init__(self,
                 x: torch.Tensor,
                 hw_shape: Tuple[int, int],
                 window_size: int,
                 options: WindowPathOptions,
                 cache: GeometryCache,
                 max_keep: Optional[Dict[int, int]] = None):
        self.batch, _, self.channels = x.shape
        self.hw_shape = hw_shape
        self.window_size = window_size
        self.options = options
        self.cache = cache
        h, w = hw_shape
        self.geo = geo = stage_geometry(h, w, window_size)
        self.tokens_per_image = geo.padded_height * geo.padded_width
        self.token_sq = token_scores(x, options.score_mode)
        if geo.padded:
            buf = torch.nn.functional.pad(
                x.view(self.batch, h, w, self.channels), (0, 0, 0, geo.pad_r, 0, geo.pad_b))
            self.buf = buf.view(self.batch * self.tokens_per_image, self.channels)
            self.valid_map = cache.valid(geo, x.device)
        else:
            # a private copy: blocks write into it in place
            self.buf = x.reshape(self.batch * self.tokens_per_image, self.channels).clone()
            self.valid_map = None
        self.rankings: Dict[int, torch.Tensor] = {}
        self.max_keep = max_keep

    def index(self, shift: int) -> torch.Tensor:
        """``(nW, ws*ws)`` token index of the regular (``shift == 0``) or shifted partition."""
        return self.cache.token_index(self.geo, self.window_size, shift, self.buf.device)

    def ranking(self, shift: int) -> torch.Tensor:
        """``(B, nW)`` (or ``(B, max_keep[shift])``) window ids of the partition, most important first,
        computed once per parity. Exporting (ONNX) ranks with ``TopK``, everything else with a stable
        sort; both keep the same windows up to exact score ties."""
        if shift not in self.rankings:
            scores = window_scores(self.token_sq, self.geo, self.index(shift))
            k = self.geo.num_windows if self.max_keep is None else self.max_keep[shift]
            self.rankings[shift] = top_windows(scores, k, stable=not is_exporting())
        return self.rankings[shift]

    def output(self) -> torch.Tensor:
        """``(B, H * W, C)``: the buffer without its padding."""
        h, w = self.hw_shape
        out = self.buf.view(self.batch, self.geo.padded_height, self.geo.padded_width, self.channels)
        if self.geo.padded:
            out = out[:, :h, :w, :]
        return out.reshape(self.batch, h * w, self.channels)


def window_block(block: torch.nn.Module, path: WindowPath, k: int) -> torch.Tensor:
    """Run ``block`` on the top-``k`` windows of its partition, in place in ``path.buf``.

    Returns:
        ``(B, k)`` the kept window ids (regular or shifted numbering by the block's parity). With
        ``k == 0`` nothing is computed: the block is the identity
        (docs/method/sparsevit.md, 2.2).
    """
    shift = block.attn.shift_size
    kept = path.ranking(shift)[:, :k]
    if k == 0:
        return kept
    index = path.index(shift)
    cache, options, device = path.cache, path.options, path.buf.device
    flat = flat_token_index(kept, index, path.tokens_per_image)
    mask = None
    if shift > 0:
        mask = cache.mask(path.geo, path.window_size, shift, device,
                          path.buf.dtype).index_select(0, kept.reshape(-1))
    valid = fill = None
    if path.valid_map is not None:
        valid = path.valid_map[index[kept]].view(-1, 1)
        fill = pad_fill_value(block, options.pad_mode, path.buf)
    bias = relative_position_bias(block.attn.w_msa, cache.bias)  # cached only without grad
    xs = path.buf.index_select(0, flat)
    # the fused kernel is an inference path: no gradient, no attention dropout
    fused = (
        options.fused_attention and not torch.is_grad_enabled()
        and not (block.training and block.attn.w_msa.attn_drop.p > 0))
    if block.with_cp and xs.requires_grad:
        z = cp.checkpoint(
            block_on_windows, block, xs, path.batch, bias, mask, valid, fill, use_reentrant=False)
    else:
        z = block_on_windows(block, xs, path.batch, bias, mask, valid, fill, fused)
    path.buf.index_copy_(0, flat, z)
    return kept


def sparse_stage_forward(blocks: Sequence[torch.nn.Module],
                         x: torch.Tensor,
                         hw_shape: Tuple[int, int],
                         ratios: Sequence[float],
                         options: WindowPathOptions,
                         cache: GeometryCache,
                         record: Optional[List[Optional[torch.Tensor]]] = None,
                         fused_dense: bool = False) -> torch.Tensor:
    """Run a stage's blocks on ``x`` with per-block pruning ratios.

    Args:
        blocks: the stage's mmdet ``SwinBlock`` s (even: regular windows, odd: shifted).
        x: ``(B, H * W, C)`` stage input.
        hw_shape: ``(H, W)``.
        ratios: one ratio per block (validated by the caller).
        options: scoring, padding and rounding switches.
        cache: geometry cache of the backbone.
        record: if a list, one entry per block is appended: the ``(B, k)`` kept window ids in processing
            order (regular or shifted numbering by parity), or ``None`` for blocks on the dense path.
        fused_dense: blocks on the dense path use the fused attention kernel (``dense_block``).

    Returns:
        ``(B, H * W, C)`` stage output (processed and copied-through tokens).
    """
    bstar = first_pruned_block(ratios, options.force_window_path)
    num_dense = len(blocks) if bstar is None else bstar
    for block in blocks[:num_dense]:
        x = dense_block(block, x, hw_shape, cache, fused_dense)
    if record is not None:
        record.extend([None] * num_dense)
    if bstar is None:
        return x
    num_windows = stage_geometry(hw_shape[0], hw_shape[1], blocks[0].attn.window_size).num_windows
    keep = [
        num_kept_windows(num_windows, ratios[i], options.keep_rounding, options.min_keep)
        for i in range(len(blocks))
    ]
    max_keep = {blocks[i].attn.shift_size: max(keep[i::2]) for i in (bstar, bstar + 1) if i < len(blocks)}
    path = WindowPath(x, hw_shape, blocks[0].attn.window_size, options, cache, max_keep)
    for i in range(bstar, len(blocks)):
        kept = window_block(blocks[i], path, keep[i])
        if record is not None:
            record.append(kept)
    return path.output()

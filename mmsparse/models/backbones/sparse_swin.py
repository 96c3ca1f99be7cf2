"""``SparseSwin``: mmdet's Swin Transformer with SparseViT window activation pruning.

A drop-in for ``mmdet.models.backbones.SwinTransformer``: same constructor arguments, same modules and
state_dict keys (plus one ``pruning_ratios`` entry that records the ratios in checkpoints and is
optional on load), so dense mmdet/mmseg Swin checkpoints load with ``strict=True``. The pruning math
lives in ``mmsparse.sparsity`` and ``sparse_swin_stage``; this class only assembles it.

``torch.compile(backbone, fullgraph=True)`` gives one graph per input shape and ratio set: the ratios
are guarded by value (a new set compiles once, an old one is reused) and the eager caches of index maps,
masks and biases are bypassed while compiling, so new images never recompile.
"""
import contextlib
import inspect
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmdet.models.backbones.swin import SwinTransformer

from mmsparse.registry import MODELS
from mmsparse.sparsity.cost import swin_macs, swin_macs_breakdown
from mmsparse.sparsity.ratios import validate_pruning_ratios
from mmsparse.sparsity.window_selection import KEEP_ROUNDINGS, SCORE_MODES
from .sparse_swin_stage import GeometryCache, WindowPathOptions, sparse_stage_forward
from .swin_block_timer import SwinBlockTimer

PAD_MODES = ('dense', 'reference')
# the constructor arguments SparseSwin adds to mmdet's SwinTransformer (a dense twin drops them)
SPARSE_ONLY_ARGS = ('pruning_ratios', 'score_mode', 'pad_mode', 'keep_rounding', 'min_keep',
                    'record_selection', 'force_window_path', 'fused_attention')
RATIOS_KEY = 'pruning_ratios'
# the constructor arguments of mmdet's SwinTransformer that the analytic MACs depend on
MACS_ARCH_ARGS = ('embed_dims', 'depths', 'window_size', 'patch_size', 'mlp_ratio', 'in_channels',
                  'out_indices')
# the keyword arguments of ``swin_macs`` that ``SparseSwin.macs`` lets a caller override
MACS_OVERRIDES = tuple(
    p for p in inspect.signature(swin_macs_breakdown).parameters if p not in ('shape', 'ratios'))


@MODELS.register_module()
class SparseSwin(SwinTransformer):
    """Swin Transformer whose blocks process only their top-k windows (SparseViT, CVPR 2023).

    All positional and keyword arguments of mmdet's ``SwinTransformer`` are accepted unchanged.

    Args:
        pruning_ratios: ``None`` (dense), a float for every block, or one list per stage with one
            float per block: the fraction of windows each block skips, in [0, 1), non-decreasing per
            window parity inside a stage, e.g. ``[[.6, .6], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]]``.
        score_mode: ``'token_mean_abs_l2'`` (window L2 of per-token mean |x|, the reference) or
            ``'window_l2'`` (L2 of the whole window tensor).
        pad_mode: ``'dense'`` (padded tokens enter qkv as 0, like dense Swin) or ``'reference'``
            (as norm1(0), like the reference code; for its released checkpoints).
        keep_rounding: ``'exact'`` or ``'reference_float'`` kept-window rule.
        min_keep: 0, or 1 to keep at least one window per block (every parameter used, e.g. for DDP).
        record_selection: keep the last forward's kept windows in ``last_selection``: one list per
            stage, one ``(B, k)`` tensor (or ``None`` on the dense path) per block.
        force_window_path: run the window path even when nothing is pruned (a test switch).
        fused_attention: on the window path, without gradient, compute attention with
            ``F.scaled_dot_product_attention`` (bias and mask passed as one additive mask, the bias
            expanded with stride 0 so that PyTorch keeps its fused kernel); where that is faster is
            measured in docs/benchmark.md. Outputs differ from the op-by-op path by float rounding
            (~1e-6). In a pruned model the unpruned blocks use it too (``fused_dense_blocks``); a
            model with every ratio 0 and training never do. ``'auto'``: measure both kernels on this
            machine at the first pruned forward without gradient (not while compiling, tracing or
            counting operators) and keep the faster, reading an earlier process's verdict for the
            same machine, architecture and input shape from the cache (``window_attention_choice``);
            until then the fused kernel.
    """

    def __init__(self,
                 *args,
                 pruning_ratios=None,
                 score_mode: str = 'token_mean_abs_l2',
                 pad_mode: str = 'dense',
                 keep_rounding: str = 'exact',
                 min_keep: int = 0,
                 record_selection: bool = False,
                 force_window_path: bool = False,
                 fused_attention: Union[bool, str] = True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        # what this backbone was built with (mmdet's Swin keeps most of it only inside its modules)
        built = inspect.signature(SwinTransformer.__init__).bind(self, *args, **kwargs)
        built.apply_defaults()
        self.arch_args = {name: built.arguments[name] for name in MACS_ARCH_ARGS + ('strides', )}
        _check_choice('score_mode', score_mode, SCORE_MODES)
        _check_choice('pad_mode', pad_mode, PAD_MODES)
        _check_choice('keep_rounding', keep_rounding, KEEP_ROUNDINGS)
        _check_choice('min_keep', min_keep, (0, 1))
        if not (isinstance(fused_attention, bool) or fused_attention == 'auto'):
            raise ValueError(f"fused_attention must be True, False or 'auto', got {fused_attention!r}")
        self.depths = tuple(len(stage.blocks) for stage in self.stages)
        self.window_options = WindowPathOptions(score_mode, pad_mode, keep_rounding, min_keep,
                                                bool(force_window_path), fused_attention is not False)
        #: set by ``fused_attention='auto'`` until the first pruned forward without gradient measures
        self.attention_pending = fused_attention == 'auto'
        #: what that measurement (or the cache) gave: ``pick_window_attention``'s dict
        self.attention_choice: Optional[dict] = None
        self.record_selection = record_selection
        self.last_selection: Optional[List[list]] = None
        # ratios found in the last loaded state dict (informational: the config stays authoritative,
        # since an SAA checkpoint records just the last random draw)
        self.checkpoint_pruning_ratios = None
        self._geometry_cache = GeometryCache()
        self._fuse_all_unpruned = False  # see fusing_unpruned_blocks
        self._pruning_ratios = validate_pruning_ratios(pruning_ratios, self.depths)
        self._register_ratio_hooks()

    # ---------------------------------------------------------------- ratios
    @property
    def pruning_ratios(self) -> List[List[float]]:
        return self.get_pruning_ratios()

    @pruning_ratios.setter
    def pruning_ratios(self, ratios) -> None:
        self.set_pruning_ratios(ratios)

    def get_pruning_ratios(self) -> List[List[float]]:
        """Current ratios, one list per stage, one float per block."""
        return [list(stage) for stage in self._pruning_ratios]

    def set_pruning_ratios(self, ratios) -> None:
        """Validate and set new ratios; they apply from the next forward (no rebuild)."""
        self._pruning_ratios = validate_pruning_ratios(ratios, self.depths)

    @contextlib.contextmanager
    def temporary_pruning_ratios(self, ratios):
        """Use ``ratios`` inside a ``with`` block, then restore the previous ones."""
        previous = self._pruning_ratios
        self.set_pruning_ratios(ratios)
        try:
            yield self
        finally:
            self._pruning_ratios = previous

    @property
    def fused_dense_blocks(self) -> bool:
        """Whether the unpruned blocks of this forward use the fused attention kernel.

        Only in a pruned model (some ratio > 0) with ``fused_attention``: with every ratio 0 the
        backbone stays bit-identical to mmdet's Swin, so a dense checkpoint gives mmdet's numbers.
        Without gradient only, like the window path's fused attention. Inside
        :meth:`fusing_unpruned_blocks` a model with every ratio 0 uses it too.
        """
        if not self.window_options.fused_attention:
            return False
        return self._fuse_all_unpruned or self._pruned()

    def _pruned(self) -> bool:
        return any(r > 0 for stage in self._pruning_ratios for r in stage)

    def pick_window_attention(self,
                              input_shape: Sequence[int],
                              batch: int = 1,
                              device=None,
                              **kwargs) -> dict:
        """Measure (or read from the cache) which attention kernel is faster here and use it from now
        on; ends ``fused_attention='auto'``'s wait. ``kwargs`` go to ``pick_window_attention``."""
        from .window_attention_choice import pick_window_attention
        self.attention_pending = False  # before timing: the timer's forwards must not measure again
        self.attention_choice = pick_window_attention(self, input_shape, batch, device, **kwargs)
        return self.attention_choice

    @contextlib.contextmanager
    def fusing_unpruned_blocks(self):
        """Run every unpruned block as a pruned model runs it, even with every ratio 0.

        The latency LUT times the parts of a forward in here: its dense-block entries and its fixed
        part (the whole dense forward minus the blocks) then describe the blocks of the pruned models
        it prices, not the bit-identical reference path.
        """
        previous, self._fuse_all_unpruned = self._fuse_all_unpruned, True
        try:
            yield self
        finally:
            self._fuse_all_unpruned = previous

    # ---------------------------------------------------------------- cost
    def macs_arguments(self) -> dict:
        """The architecture keyword arguments of :func:`mmsparse.sparsity.cost.swin_macs` for this
        backbone, from its own constructor arguments and window options (never Swin-T defaults)."""
        strides = tuple(int(s) for s in self.arch_args['strides'])
        if any(s != 2 for s in strides[1:]):
            # the cost model halves the map at every patch merging
            raise ValueError(f'SparseSwin.macs: the MACs model needs strides (patch_size, 2, 2, ...), got '
                             f'strides={strides}')
        args = {name: self.arch_args[name] for name in MACS_ARCH_ARGS}
        args['depths'] = tuple(self.depths)
        args['out_indices'] = tuple(args['out_indices'])
        args.update(keep_rounding=self.window_options.keep_rounding, min_keep=self.window_options.min_keep)
        return args

    def macs(self, hw: Sequence[int], ratios=None, batch: int = 1, **overrides) -> int:
        """Analytic MACs of ``batch`` images of ``hw = (H, W)`` pixels through this backbone.

        Args:
            hw: input image size ``(H, W)`` in pixels.
            ratios: anything ``set_pruning_ratios`` accepts; None: the ratios currently set.
            batch: images per forward (the MACs scale with it).
            overrides: keyword arguments of ``swin_macs`` that replace this backbone's own, e.g.
                ``convention='paper'`` (see :func:`mmsparse.sparsity.cost.swin_macs_breakdown`).

        Returns:
            the MACs (1 MAC = one multiply-add), an int.
        """
        unknown = sorted(set(overrides) - set(MACS_OVERRIDES))
        if unknown:
            raise ValueError(
                f'SparseSwin.macs: unknown argument(s) {unknown}; allowed: {list(MACS_OVERRIDES)}')
        ratios = self._pruning_ratios if ratios is None else validate_pruning_ratios(ratios, self.depths)
        return swin_macs(tuple(hw), ratios, batch=batch, **{**self.macs_arguments(), **overrides})

    def block_timer(self,
                    input_shape: Sequence[int],
                    batch: int = 1,
                    device=None,
                    **kwargs) -> SwinBlockTimer:
        """A :class:`SwinBlockTimer` that times the parts of this backbone's forward on its own
        (for the latency look-up table); ``kwargs`` as there (``warmup``, ``iters``, ``measure``,
        ``chunk``). An ``'auto'`` attention choice is settled first, so the parts are timed with the
        kernel the forward will use."""
        if self.attention_pending:
            self.pick_window_attention(input_shape, batch, device)
        return SwinBlockTimer(self, input_shape, batch, device, **kwargs)

    @property
    def geometry_cache(self) -> GeometryCache:
        """The eager cache of window index maps, masks and biases that every forward shares (a block
        timed on its own must use it too, as inside a whole forward)."""
        return self._geometry_cache

    def _register_ratio_hooks(self) -> None:
        post_hook = getattr(self, 'register_state_dict_post_hook', None) \
            or self._register_state_dict_hook
        post_hook(_save_ratios_hook)
        self.register_load_state_dict_pre_hook(_load_ratios_hook)

    def train(self, mode: bool = True):
        # mmdet's train() returns None; returning self keeps ``model.eval()`` chainable like nn.Module
        super().train(mode)
        return self

    # ---------------------------------------------------------------- forward
    def _embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``(B, 3, H, W)`` -> ``(B, H_0 * W_0, C)`` patch tokens (+ absolute position embedding)."""
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        return self.drop_after_pos(x), hw_shape

    def stage_inputs(self, x: torch.Tensor) -> List[Tuple[torch.Tensor, Tuple[int, int]]]:
        """``(B, 3, H, W)`` images -> the ``((B, H_s * W_s, C_s), (H_s, W_s))`` input of each stage on
        the current ratios (for timing stages alone, see ``SwinBlockTimer``)."""
        x, hw_shape = self._embed(x)
        fused = self.fused_dense_blocks  # as in forward: one decision for the whole pass
        inputs = []
        for i, stage in enumerate(self.stages):
            inputs.append((x, hw_shape))
            x = sparse_stage_forward(
                stage.blocks,
                x,
                hw_shape,
                self._pruning_ratios[i],
                self.window_options,
                self._geometry_cache,
                fused_dense=fused)
            if stage.downsample is not None:
                x, hw_shape = stage.downsample(x, hw_shape)
        return inputs

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` images -> one ``(B, C_s, H_s, W_s)`` map per entry of ``out_indices``.

        A tuple (mmdet's Swin returns a list): mmdet/mmseg/mmdet3d necks take either, and mmpretrain's
        ``GlobalAveragePooling`` takes only a tuple, so one backbone serves all four tasks.
        """
        if self.attention_pending and not torch.is_grad_enabled() and self._pruned() and _may_time(x):
            self.pick_window_attention(x.shape[-2:], x.shape[0], x.device)
        x, hw_shape = self._embed(x)
        fused = self.fused_dense_blocks
        selection = [] if self.record_selection else None
        outs = []
        for i, stage in enumerate(self.stages):
            record = [] if selection is not None else None
            x = sparse_stage_forward(stage.blocks, x, hw_shape, self._pruning_ratios[i], self.window_options,
                                     self._geometry_cache, record, fused)
            if selection is not None:
                selection.append(record)
            out, out_hw_shape = x, hw_shape
            if stage.downsample is not None:
                x, hw_shape = stage.downsample(x, hw_shape)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                out = out.view(-1, *out_hw_shape, self.num_features[i]).permute(0, 3, 1, 2)
                outs.append(out.contiguous())
        self.last_selection = selection
        return tuple(outs)


def _save_ratios_hook(module, state_dict, prefix, local_metadata):
    """Record the current ratios, flattened over blocks, as a float64 tensor ``(sum(depths),)``."""
    flat = [r for stage in module._pruning_ratios for r in stage]
    state_dict[prefix + RATIOS_KEY] = torch.tensor(flat, dtype=torch.float64)


def _load_ratios_hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                      error_msgs):
    """Pop the optional ratios entry so dense Swin state dicts (without it) and ours both load strictly."""
    flat = state_dict.pop(prefix + RATIOS_KEY, None)
    if flat is None:
        return
    flat = [float(r) for r in torch.as_tensor(flat).flatten()]
    if len(flat) != sum(module.depths):
        error_msgs.append(f'{prefix}{RATIOS_KEY} has {len(flat)} entries, expected '
                          f'{sum(module.depths)} (depths {module.depths})')
        return
    ratios, start = [], 0
    for d in module.depths:
        ratios.append(flat[start:start + d])
        start += d
    module.checkpoint_pruning_ratios = ratios


def _may_time(x: torch.Tensor) -> bool:
    """Whether a forward may stop to time the attention kernels: not while it is being compiled,
    traced (jit, ONNX export), counted (``FlopCounterMode`` and other dispatch modes would count the
    timing runs as this forward's) or run on meta tensors."""
    from torch.utils._python_dispatch import is_in_torch_dispatch_mode
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing() or is_in_torch_dispatch_mode()
                or x.device.type == 'meta')


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f'{name} must be one of {allowed}, got {value!r}')

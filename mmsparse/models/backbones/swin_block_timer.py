"""Times each part of a ``SparseSwin`` forward on its own, for the latency look-up table
(docs/method/sparsevit.md, 6.2).

``LatencyLUT.measure`` adds the parts up; timing them alone, on the very inputs the dense forward feeds
each stage, keeps what does not scale per block (scoring, the padded copy, the rankings) out of the
block entries, which is where a LUT calibrated from whole-model timings goes wrong.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from mmsparse.sparsity.latency import BlockTimer, LatencyLUT, device_name, distributed_iqm, time_fn
from mmsparse.sparsity.window_selection import stage_geometry
from .sparse_swin_stage import WindowPath, dense_block, window_block

__all__ = ['SwinBlockTimer', 'measure_swin_lut', 'choose_window_attention']


class SwinBlockTimer(BlockTimer):
    """A :class:`~mmsparse.sparsity.latency.BlockTimer` for a ``SparseSwin``.

    Args:
        backbone: the ``SparseSwin`` (put in eval mode; its ratios are left as they were).
        input_shape: ``(H, W)`` of the images in pixels.
        batch: images per forward.
        device: where to time (on CUDA the clock reads are synchronised).
        warmup, iters: untimed and timed calls per part; the IQM over every process's samples is
            returned (``distributed_iqm``), in ms.
        chunk: parts are timed ``chunk`` calls at a time (``time_fn``), so on a GPU their launches
            overlap their kernels as inside a whole forward; the whole model is timed call by call,
            like the direct measurement the LUT is rated against.
        measure: ``measure(fn) -> float`` replaces the timing, e.g. an operator counter, which makes
            the LUT's additivity exactly checkable.
    """

    def __init__(self,
                 backbone: torch.nn.Module,
                 input_shape: Sequence[int],
                 batch: int = 1,
                 device=None,
                 warmup: int = 200,
                 iters: int = 300,
                 measure: Optional[Callable[[Callable], float]] = None,
                 chunk: int = 10):
        self.backbone = backbone.eval()
        self.device = torch.device(device or 'cpu')
        if measure is None:
            self.measure = lambda fn: distributed_iqm(time_fn(fn, warmup, iters, self.device, chunk))
            self.measure_whole = lambda fn: distributed_iqm(time_fn(fn, warmup, iters, self.device))
        else:
            self.measure = self.measure_whole = measure
        self.images = torch.randn(int(batch), 3, *input_shape, device=self.device)
        with torch.inference_mode():
            self.stage_inputs = backbone.stage_inputs(self.images)
        #: windows per image of each stage at this input shape
        self.num_windows = [
            stage_geometry(h, w, stage.blocks[0].attn.window_size).num_windows
            for (_, (h, w)), stage in zip(self.stage_inputs, backbone.stages)
        ]

    def _time(self, fn, measure=None) -> float:
        # every part as a pruned model runs it, the unpruned blocks included (their fused kernel)
        with torch.inference_mode(), self.backbone.fusing_unpruned_blocks():
            return float((measure or self.measure)(fn))

    def _stage(self, stage: int) -> Tuple[List[torch.nn.Module], torch.Tensor, Tuple[int, int]]:
        x, hw_shape = self.stage_inputs[stage]
        return self.backbone.stages[stage].blocks, x, hw_shape

    def _enter(self, stage: int) -> WindowPath:
        blocks, x, hw_shape = self._stage(stage)
        bb = self.backbone
        return WindowPath(x, hw_shape, blocks[0].attn.window_size, bb.window_options, bb.geometry_cache)

    def dense_block(self, stage: int, block: int) -> float:
        blocks, x, hw_shape = self._stage(stage)
        # as an unpruned block of a pruned model runs it (see SparseSwin.fusing_unpruned_blocks)
        fused = self.backbone.window_options.fused_attention
        return self._time(
            lambda: dense_block(blocks[block], x, hw_shape, self.backbone.geometry_cache, fused))

    def stage_entry(self, stage: int) -> float:
        shifts = sorted({blk.attn.shift_size for blk in self._stage(stage)[0]})

        def enter_and_leave():
            path = self._enter(stage)
            for shift in shifts:
                path.ranking(shift)
            return path.output()

        return self._time(enter_and_leave)

    def window_block(self, stage: int, block: int, k: int) -> float:
        blk = self._stage(stage)[0][block]
        with torch.inference_mode():
            path = self._enter(stage)
            path.ranking(blk.attn.shift_size)  # ranked once on entry, not per block
        return self._time(lambda: window_block(blk, path, k))

    def whole(self, block_ratios) -> float:
        with self.backbone.temporary_pruning_ratios(block_ratios):
            return self._time(lambda: self.backbone(self.images), self.measure_whole)


def measure_swin_lut(backbone: torch.nn.Module,
                     input_shape: Sequence[int],
                     choices: Sequence[float],
                     batch: int = 1,
                     device=None,
                     warmup: int = 200,
                     iters: int = 300,
                     device_label: Optional[str] = None,
                     rounds: int = 1,
                     progress=None,
                     measure: Optional[Callable[[Callable], float]] = None,
                     chunk: int = 10,
                     fit_configs: Optional[list] = None) -> LatencyLUT:
    """``LatencyLUT.measure`` of a ``SparseSwin`` through its :class:`SwinBlockTimer`.

    Args:
        backbone: the ``SparseSwin``; its window options (rounding, ``min_keep``, forced window
            path) are the LUT's.
        input_shape: ``(H, W)`` in pixels.
        choices: the ratio grid; one entry per block and distinct k it gives.
        batch, device, warmup, iters: as in :class:`SwinBlockTimer`.
        device_label: the LUT key's device name (default ``device_name(device)``).
        rounds, progress: as in ``LatencyLUT.measure``.
        measure, chunk: as in :class:`SwinBlockTimer`.
        fit_configs: configurations (e.g. draws of the search space) to fit the LUT's fixed part
            and path scales on, from whole-model timings (``LatencyLUT.fit``); None: no fit.
    """
    timer = backbone.block_timer(
        input_shape, batch, device, warmup=warmup, iters=iters, measure=measure, chunk=chunk)
    options = backbone.window_options
    meta = dict(
        device=device_label or device_name(device), shape=[int(v) for v in input_shape], batch=int(batch))
    lut = LatencyLUT.measure(timer, timer.num_windows, backbone.depths, choices, meta, options.keep_rounding,
                             options.min_keep, options.force_window_path, rounds, progress)
    return lut.fit(timer.whole, fit_configs) if fit_configs else lut


def choose_window_attention(backbone: torch.nn.Module,
                            input_shape: Sequence[int],
                            batch: int = 1,
                            device=None,
                            ratio: float = 0.5,
                            warmup: int = 3,
                            iters: int = 10,
                            measure: Optional[Callable[[Callable], float]] = None) -> dict:
    """Time the window path's attention both ways on this machine and keep the faster one.

    Whether ``F.scaled_dot_product_attention`` beats the op-by-op attention on gathered windows depends
    on the CPU's ISA and the PyTorch build (or the GPU), so it is measured once rather than assumed:
    one regular and one shifted window block of every stage, keeping ``1 - ratio`` of the windows, and
    one unpruned block of every stage (a pruned model runs those with the same kernel) are timed with
    each kernel (:class:`SwinBlockTimer`, median of ``iters`` calls after ``warmup``), and
    ``backbone.window_options.fused_attention`` is set to the faster. Outputs of the two differ by
    float rounding only.

    Returns:
        ``dict(fused_ms=..., unfused_ms=..., fused_attention=bool)``, the summed block times.
    """
    from mmsparse.sparsity.window_selection import num_kept_windows
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'ratio must be in [0, 1), got {ratio!r}')
    if measure is None:

        def measure(fn):
            samples = time_fn(fn, warmup, iters, torch.device(device or 'cpu'))
            return sorted(samples)[len(samples) // 2]

    options = backbone.window_options
    timer = backbone.block_timer(input_shape, batch, device, measure=measure)
    totals = {}
    for fused in (True, False):
        backbone.window_options = options._replace(fused_attention=fused)
        total = 0.0
        for stage, sequence in enumerate(backbone.stages):
            k = num_kept_windows(timer.num_windows[stage], ratio, options.keep_rounding, options.min_keep)
            for block in range(min(2, len(sequence.blocks))):  # one of each parity
                total += timer.window_block(stage, block, k)
            total += timer.dense_block(stage, 0)  # a pruned model's unpruned blocks follow the choice too
        totals[fused] = total
    backbone.window_options = options._replace(fused_attention=totals[True] <= totals[False])
    return dict(
        fused_ms=totals[True],
        unfused_ms=totals[False],
        fused_attention=backbone.window_options.fused_attention)

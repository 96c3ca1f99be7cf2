"""The latency LUT's decomposition of a real SparseSwin forward (docs/method/sparsevit.md, 3.3).

Timing is noisy, so exactness is checked with a deterministic additive cost instead: the number of
aten operators a call dispatches. If the LUT's parts (dense blocks, window-path entries, window blocks
at each k, the fixed rest) cover the forward exactly once, its estimate equals the whole forward's count
for every configuration. Real timings are rated by ``tools/analysis_tools/lut_accuracy.py``.
"""
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmsparse.models.backbones import SwinBlockTimer, measure_swin_lut
from mmsparse.sparsity.search_space import SwinRatioSpace
from tests.tiny_models import patch2_sparse_swin as tiny_swin


class OpCounter(TorchDispatchMode):
    """Counts aten operator calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn):
    fn()  # fills the geometry and bias caches, as the timer's warm-up does
    with OpCounter() as counter:
        fn()
    return counter.calls


@pytest.mark.parametrize('options', [dict(), dict(force_window_path=True), dict(pad_mode='reference')])
def test_lut_parts_cover_the_forward_exactly(options):
    swin = tiny_swin(**options)
    shape = (60, 92)  # padded at every stage: 30x46 -> 35x49 tokens, ... down to one window
    space = SwinRatioSpace(swin.depths)
    lut = measure_swin_lut(swin, shape, space.choices, batch=2, device_label='ops', measure=count_ops)
    assert lut.num_windows == [35, 12, 4, 1]
    assert lut.force_window_path == bool(options.get('force_window_path'))
    assert len(lut.dense_ms) == (0 if lut.force_window_path else 10) and len(lut.entry_ms) == 4
    assert lut.fixed_ms > 0  # patch embedding, merges and output norms
    whole = SwinBlockTimer(swin, shape, batch=2, measure=count_ops).whole
    rng = np.random.default_rng(0)
    configs = [[[0.0] * d for d in swin.depths], [[.8, .8], [.8, .8], [.8, .8, .8, .8], [.8, .8]],
               [[0, 0], [0, 0], [0, 0, .3, .3], [0, 0]]]
    configs += space.sample_block_ratios(rng, 12)
    for cfg in configs:
        assert lut.estimate(cfg) == whole(cfg), cfg


def test_timer_leaves_the_backbone_as_it_was():
    swin = tiny_swin(pruning_ratios=[[.5, .5], [0, 0], [0, 0, .2, .2], [0, 0]])
    before = swin.get_pruning_ratios()
    timer = SwinBlockTimer(swin, (56, 56), warmup=1, iters=3)
    assert [x.shape for x, _ in timer.stage_inputs] == [(1, 784, 16), (1, 196, 32), (1, 49, 64), (1, 16, 128)]
    times = [
        timer.stage_entry(0),
        timer.dense_block(1, 1),
        timer.window_block(2, 3, 1),
        timer.window_block(0, 0, 0),
        timer.whole([[.8] * d for d in swin.depths])
    ]
    assert all(t > 0 for t in times)
    assert swin.get_pruning_ratios() == before and not swin.training


@pytest.mark.parametrize('fused_is_faster', [True, False])
def test_choose_window_attention_keeps_the_faster_kernel(fused_is_faster):
    from mmsparse.models.backbones.swin_block_timer import choose_window_attention
    model = tiny_swin(
        pruning_ratios=[[.5, .5], [.5, .5], [.5] * 4, [0, 0]], fused_attention=not fused_is_faster)
    timed = []

    def fake_measure(fn):  # the kernel in use when a block is timed decides its "time"
        fn()
        fused = model.window_options.fused_attention
        timed.append(fused)
        return 1.0 if fused == fused_is_faster else 2.0

    result = choose_window_attention(model, (56, 56), measure=fake_measure)
    assert result['fused_attention'] is fused_is_faster
    assert model.window_options.fused_attention is fused_is_faster
    assert timed.count(True) == timed.count(False) == 12  # (2 window + 1 unpruned block) x 4 stages, each way
    # the chosen kernel is the one the forward uses: same output as a model built with it
    same = tiny_swin(pruning_ratios=[[.5, .5], [.5, .5], [.5] * 4, [0, 0]], fused_attention=fused_is_faster)
    x = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, b in zip(model(x), same(x)):
            assert torch.equal(a, b)

"""Latency statistics, timing helper and the latency look-up table (docs/method/sparsevit.md, 3.3).

Latency is the interquartile mean (the mean of the middle 50 %) of the timings of every rank, concatenated
before trimming."""
import json
import math
import os
import socket

import numpy as np
import pytest
import torch.multiprocessing as mp

from mmsparse.sparsity.latency import (BlockTimer, LatencyLUT, concat_rank_samples, direct_latency_fn,
                                       distributed_iqm, gather_samples, interquartile_mean, time_fn)
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS
from mmsparse.sparsity.search_space import SwinRatioSpace


def test_interquartile_mean_known_values():
    assert interquartile_mean([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5  # mean of 3, 4, 5, 6
    # order does not matter and outliers in the outer quartiles are dropped
    assert interquartile_mean([1000, 3, 5, -50, 4, 6, 2, 7]) == 4.5
    # the reference's 300 timed iterations: middle 150 of 0..299 are 75..224, mean 149.5
    assert interquartile_mean(range(300)[::-1]) == 149.5
    # n not divisible by 4: floor(9/4) = 2 dropped at each end -> mean of 3..7 = 5
    assert interquartile_mean(range(1, 10)) == 5.0
    assert interquartile_mean([3.25]) == 3.25  # one process, one sample: finite
    assert interquartile_mean([1, 2, 9]) == 4.0  # fewer than 4: nothing dropped
    with pytest.raises(ValueError, match='empty'):
        interquartile_mean([])


def test_concatenation_before_trimming():
    per_rank = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]
    flat = concat_rank_samples(per_rank)
    assert flat == [1, 2, 3, 4, 5, 6, 7, 8]
    assert interquartile_mean(flat) == 4.5
    # the reference sorts and trims the list of per-rank lists instead: on one process the slice
    # [int(0.25 n), int(0.75 n)) of a 1-element list is empty, so its mean is NaN
    reference_lists = sorted([[1.0, 2.0, 3.0, 4.0]])
    assert reference_lists[int(0.25 * len(reference_lists)):int(0.75 * len(reference_lists))] == []
    # ours on one process: no process group -> the samples themselves
    assert gather_samples([4.0, 1.0]) == [4.0, 1.0]
    assert distributed_iqm([2.0]) == 2.0
    with pytest.raises(ValueError, match=r'per_rank\[1\]'):
        concat_rank_samples([[1.0], [[2.0]]])


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank_worker(rank, port, out_dir):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    samples = [[10.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 100.0]][rank]
    result = dict(gathered=gather_samples(samples), iqm=distributed_iqm(samples))
    with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(result, f)
    dist.destroy_process_group()


def test_two_process_gather(tmp_path):
    # fork: the workers only exchange lists, and re-importing the package per process costs ~15 s
    mp.start_processes(
        _rank_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True, start_method='fork')
    results = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    for res in results:
        # rank 0's samples, then rank 1's; IQM of the 8 values: sorted 1..6,10,100 -> mean(3,4,5,6)
        assert res['gathered'] == [10.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]
        assert res['iqm'] == 4.5


def test_time_fn_counts_and_is_finite():
    calls = []
    times = time_fn(lambda: calls.append(sum(range(1000))), warmup=3, iters=7)
    assert len(calls) == 10 and len(times) == 7
    assert all(math.isfinite(t) and t >= 0 for t in times)
    assert math.isfinite(interquartile_mean(times))
    with pytest.raises(ValueError, match='iters'):
        time_fn(lambda: None, warmup=0, iters=0)
    # chunks: 7 calls per sample, 2 samples (iters // chunk), each the mean of its calls
    calls.clear()
    times = time_fn(lambda: calls.append(1), warmup=1, iters=14, chunk=7)
    assert len(calls) == 15 and len(times) == 2
    with pytest.raises(ValueError, match='chunk'):
        time_fn(lambda: None, chunk=0)


def test_direct_latency_fn_sets_ratios_and_times():
    import torch

    class Timed(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.ratios, self.shapes = None, []

        def set_pruning_ratios(self, ratios):
            self.ratios = ratios

        def forward(self, x):
            self.shapes.append(tuple(x.shape))
            return x.sum()

    module = Timed().train()
    measure = direct_latency_fn(module, (32, 48), batch=2, warmup=1, iters=4)
    ms = measure(((0.5, 0.5), (0.0, 0.0)))
    assert math.isfinite(ms) and ms >= 0
    assert module.ratios == [[0.5, 0.5], [0.0, 0.0]] and not module.training
    assert module.shapes == [(2, 3, 32, 48)] * 5  # 1 warm-up + 4 timed


class ToyTimer(BlockTimer):
    """An exactly additive toy model: window block (s, b, k) costs 0.01 * k * (s + 1) + b / 1000 ms,
    a dense block 0.02 * nW * (s + 1), entering the window path 0.5 + s ms, the rest 5 ms."""

    def __init__(self, num_windows):
        self.num_windows = num_windows
        self.calls = []

    def window_block(self, s, b, k):
        self.calls.append((s, b, k))
        return 0.01 * k * (s + 1) + b / 1000

    def dense_block(self, s, b):
        return 0.02 * self.num_windows[s] * (s + 1)

    def stage_entry(self, s):
        return 0.5 + s

    def whole(self, block_ratios):
        total = 5.0
        for s, stage in enumerate(block_ratios):
            bstar = next((b for b, r in enumerate(stage) if r > 0), len(stage))
            total += sum(self.dense_block(s, b) for b in range(bstar))
            if bstar < len(stage):
                total += self.stage_entry(s) + sum(
                    self.window_block(s, b, math.floor(self.num_windows[s] * (1 - stage[b]) + 1e-6))
                    for b in range(bstar, len(stage)))
        return total


def _toy_lut(**kwargs):
    # 672^2 Swin-T: nW 576/144/36/9
    timer = ToyTimer([576, 144, 36, 9])
    lut = LatencyLUT.measure(
        timer,
        num_windows=[576, 144, 36, 9],
        depths=[2, 2, 6, 2],
        choices=[i / 10 for i in range(9)],
        meta=dict(device='toy-gpu', shape=(672, 672), batch=4),
        **kwargs)
    return lut, timer


def test_lut_measures_each_k_once():
    progress = []
    lut, timer = _toy_lut(progress=lambda done, total: progress.append((done, total)))
    assert len(timer.calls) == len(set(timer.calls)) == 12 * 9  # every k of the grid is distinct at 672^2
    ks_stage3 = sorted({k for s, _, k in timer.calls if s == 3})
    assert ks_stage3 == [1, 2, 3, 4, 5, 6, 7, 8,
                         9]  # stage 3 has 9 windows at 672^2: k = 9 (r = 0) down to 1 (r = 0.8)
    assert sorted({k for s, _, k in timer.calls if s == 0}) == [115, 172, 230, 288, 345, 403, 460, 518, 576]
    # 4 entries + 12 dense blocks + 108 window blocks + the whole dense model
    assert progress == [(i, 125) for i in range(1, 126)]
    assert sorted(lut.entry_ms) == [0, 1, 2, 3] and len(lut.dense_ms) == 12
    assert lut.fixed_ms == pytest.approx(5.0)  # whole dense minus its dense blocks
    # with the window path forced, no dense block is measured; three rounds time everything 3 times
    lut, timer = _toy_lut(force_window_path=True, rounds=3)
    assert lut.dense_ms == {} and len(timer.calls) == 3 * 12 * 9
    with pytest.raises(ValueError, match='rounds must be >= 1'):
        _toy_lut(rounds=0)


def test_lut_estimate_is_sum_of_parts(tmp_path):
    lut, timer = _toy_lut()
    cfg2 = PUBLISHED_RATIOS['cfg2']
    # by hand: stages 0 and 2 enter the window path at b* = 0, k = 230 (s0), 28, 28, 21, 21, 18, 18
    # (s2); stages 1 and 3 stay dense
    by_hand = 5.0 + 0.5 + 2.5 + 2 * 0.02 * 144 * 2 + 2 * 0.02 * 9 * 4 + sum(
        0.01 * k * (s + 1) + b / 1000 for s, b, k in [(0, 0, 230), (0, 1, 230), (2, 0, 28), (2, 1, 28),
                                                      (2, 2, 21), (2, 3, 21), (2, 4, 18), (2, 5, 18)])
    assert lut.estimate(cfg2) == pytest.approx(by_hand, rel=1e-12)
    parts = lut.parts(cfg2)
    assert parts['fixed'] == pytest.approx(5.0) and len(parts) == 1 + 2 + 8 + 4
    assert ('entry', 0) in parts and ('dense', 1, 0) in parts and (0, 0, 230) in parts
    assert lut.estimate(cfg2) == pytest.approx(sum(parts.values()), rel=1e-12)
    # b* > 0: r = 0 blocks before b* cost their dense time, r = 0 blocks after it the window path's
    late = [[0, 0], [0, 0], [0, 0, .3, .3, .3, .3], [0, 0]]
    assert ('dense', 2, 1) in lut.parts(late) and (2, 4, 25) in lut.parts(late)
    dense = [[0.0] * d for d in (2, 2, 6, 2)]
    for cfg in (cfg2, late, dense, [[.1, .2], [.8, .8], [0, 0, 0, 0, .1, .1], [.5, .5]]):
        assert lut.estimate(cfg) == pytest.approx(timer.whole(cfg), rel=1e-12)
    # validation against direct measurements: a direct timer 2 % slower gives -2 % / 1.02 errors
    errors = lut.relative_errors([cfg2, dense], lambda c: 1.02 * lut.estimate(c))
    assert errors == pytest.approx([1 / 1.02 - 1] * 2)
    with pytest.raises(ValueError, match=r'block_ratios\[0\]\[0\] = 0.65 gives k=201'):
        lut.estimate([[.65, .65], [0, 0], [0] * 6, [0, 0]])
    with pytest.raises(ValueError, match='lengths'):
        lut.estimate([[0, 0], [0, 0], [0] * 6])


def test_lut_fit_recovers_path_scales():
    """Whole-model times that are an affine function of the LUT's dense- and window-path sums (what a
    GPU overlapping launches with kernels looks like) are predicted exactly after the fit."""
    lut, timer = _toy_lut()
    rng = np.random.default_rng(0)
    space = SwinRatioSpace()
    configs = space.sample_block_ratios(rng, 8)
    configs.append([[0.0] * d for d in space.depths])

    def skewed(cfg):
        dense, window = lut.path_sums(cfg)
        return 3.0 + 0.9 * dense + 0.8 * window

    fitted = lut.fit(skewed, configs)
    assert fitted.fit_report['used'] and fitted.fit_report['max_abs_residual'] < 1e-9
    assert (fitted.fixed_ms, fitted.dense_scale, fitted.window_scale) == pytest.approx((3.0, 0.9, 0.8))
    unseen = space.sample_block_ratios(rng, 5)
    for cfg in unseen:
        assert fitted.estimate(cfg) == pytest.approx(skewed(cfg), rel=1e-9)
        assert lut.estimate(cfg) == pytest.approx(timer.whole(cfg), rel=1e-12)  # the original is kept
    assert LatencyLUT.from_dict(json.loads(json.dumps(fitted.to_dict()))).estimate(unseen[0]) == \
        pytest.approx(skewed(unseen[0]), rel=1e-9)
    # timings that fall as the parts grow are no latency model: refused, the measured LUT kept
    refused = lut.fit(lambda cfg: 100.0 - sum(lut.path_sums(cfg)), configs)
    assert not refused.fit_report['used']
    assert refused.estimate(unseen[0]) == pytest.approx(lut.estimate(unseen[0]), rel=1e-12)
    with pytest.raises(ValueError, match='at least 4 configurations'):
        lut.fit(skewed, configs[:3])


def test_lut_calibration_from_whole_model_timings():
    """On an exactly additive latency (fixed + per-block cost of k), the calibrated LUT is exact."""
    import itertools
    nws, depths = [576, 144, 36, 9], [2, 2, 6, 2]
    per_window = [0.004, 0.011, 0.05, 0.2]  # ms per kept window per block, by stage
    timed = []

    def time_config(block_ratios):
        timed.append(block_ratios)
        return 7.0 + sum(per_window[s] * math.floor(nws[s] * (1 - r) + 1e-6)
                         for s, stage in enumerate(block_ratios) for r in stage)

    choices = [i / 10 for i in range(9)]
    lut = LatencyLUT.calibrate(time_config, nws, depths, choices,
                               dict(device='toy', shape=(672, 672), batch=4))
    assert len(timed) == 1 + 4 * 8  # dense + every stage at every non-zero ratio
    assert lut.fixed_ms == pytest.approx(7.0 + sum(p * n * d for p, n, d in zip(per_window, nws, depths)))
    grid = [0.0, 0.3, 0.8]
    for s0, s2a, s2b, s2c in itertools.product(grid, grid, grid, grid):
        if not s2a <= s2b <= s2c:
            continue
        cfg = [[s0, s0], [0.5, 0.5], [s2a, s2a, s2b, s2b, s2c, s2c], [0.1, 0.1]]
        assert lut.estimate(cfg) == pytest.approx(time_config(cfg), rel=1e-12)


def test_lut_json_round_trip(tmp_path):
    lut, _ = _toy_lut()
    path = str(tmp_path / 'latency_lut.json')
    assert LatencyLUT.load(path, 'toy-gpu', (672, 672), 4) is None
    lut.save(path)
    other = LatencyLUT([1], [2], {
        (0, 0, 1): 1.0,
        (0, 1, 1): 2.0
    },
                       0.5,
                       dict(device='cpu', shape=(224, 224), batch=1),
                       dense_ms={
                           (0, 0): 1.0,
                           (0, 1): 2.0
                       })
    other.save(path)
    stored = json.loads(open(path).read())
    assert sorted(stored) == ['cpu|224x224|batch1', 'toy-gpu|672x672|batch4']
    back = LatencyLUT.load(path, 'toy-gpu', [672, 672], 4)
    assert back.table == lut.table and back.fixed_ms == lut.fixed_ms
    assert back.dense_ms == lut.dense_ms and back.entry_ms == lut.entry_ms
    cfg = [[.7, .7], [0, 0], [.3, .3, .4, .4, .7, .7], [0, 0]]
    assert back.estimate(cfg) == lut.estimate(cfg)
    assert LatencyLUT.load(path, 'toy-gpu', (640, 640), 4) is None
    assert LatencyLUT.load(path, 'cpu', (224, 224), 1).estimate([[0, 0]]) == 3.5
    (tmp_path / 'bad.json').write_text('{')
    with pytest.raises(ValueError, match='not valid JSON'):
        LatencyLUT.load(str(tmp_path / 'bad.json'), 'cpu', (224, 224), 1)
    with pytest.raises(ValueError, match="'batch'"):
        LatencyLUT([1], [2], {}, 0.0, dict(device='cpu', shape=(1, 1)))

"""Latency measurement (spec sparsevit.md §8) and a per-block latency look-up table (§5).

* :func:`interquartile_mean` is the reference's statistic: sort, drop 25 % at each end, average the
  rest. Across processes the samples are **concatenated first** (:func:`gather_samples`); the
  reference trims the list of per-rank lists instead, which is empty on one process (pitfall 8).
* :func:`time_fn` times a callable: warm-up, then timed iterations, each synchronised on CUDA.
* :class:`LatencyLUT` estimates a configuration's latency as a fixed part plus one entry per
  (stage, block, kept windows k). Entries are measured by callbacks supplied from above, so this
  file knows nothing about the model.

All times are milliseconds.
"""
import json
import math
import os
import tempfile
import time

import numpy as np
import torch
import torch.distributed as torch_dist

from .window_selection import num_kept_windows


def interquartile_mean(samples):
    """Mean of the middle 50 % of ``samples`` (``n // 4`` dropped at each end after sorting).

    With fewer than 4 samples nothing is dropped, so a single sample gives itself.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError('samples must not be empty')
    cut = x.size // 4
    return float(x[cut:x.size - cut].mean())


def concat_rank_samples(per_rank):
    """``[[t, ...] of rank 0, [t, ...] of rank 1, ...]`` -> one flat list of samples."""
    out = []
    for r, samples in enumerate(per_rank):
        if np.ndim(samples) != 1:
            raise ValueError(f'per_rank[{r}] must be a flat sequence of times, got {samples!r}')
        out.extend(float(t) for t in samples)
    return out


def gather_samples(samples):
    """All processes' samples, concatenated in rank order (just ``samples`` without a process group)."""
    samples = [float(t) for t in samples]
    if not (torch_dist.is_available() and torch_dist.is_initialized()) or torch_dist.get_world_size() == 1:
        return samples
    per_rank = [None] * torch_dist.get_world_size()
    torch_dist.all_gather_object(per_rank, samples)
    return concat_rank_samples(per_rank)


def distributed_iqm(samples):
    """Interquartile mean of every process's samples together (identical on all ranks)."""
    return interquartile_mean(gather_samples(samples))


def time_fn(fn, warmup=200, iters=300, device=None):
    """Call ``fn()`` ``warmup`` times, then time ``iters`` calls one by one.

    Args:
        fn (callable): the work, e.g. ``lambda: backbone(x)`` under ``torch.inference_mode()``.
        warmup (int): untimed calls (cudnn autotuning, caches). Reference: 200.
        iters (int): timed calls. Reference: 300.
        device (torch.device | str | None): on a CUDA device every call is synchronised before
            and after, so the time covers the kernels and not only their launch.

    Returns:
        list[float]: ``iters`` wall times in ms.
    """
    if warmup < 0 or iters < 1:
        raise ValueError(f'warmup must be >= 0 and iters >= 1, got {warmup}, {iters}')
    cuda = device is not None and torch.device(device).type == 'cuda'

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def direct_latency_fn(module, input_shape, batch=1, device=None, warmup=200, iters=300):
    """``block_ratios -> ms``: set the ratios on ``module`` (anything with ``set_pruning_ratios``) and
    time its forward on ``randn(batch, 3, H, W)`` in eval + inference mode; the IQM of every
    process's samples together (§8). The reference times the backbone only, at batch 4, in fp32."""
    device = torch.device(device or 'cpu')
    x = torch.randn(int(batch), 3, *input_shape, device=device)

    def measure(block_ratios):
        module.set_pruning_ratios([list(stage) for stage in block_ratios])
        module.eval()
        with torch.inference_mode():
            times = time_fn(lambda: module(x), warmup, iters, device)
        return distributed_iqm(times)

    return measure


def device_name(device=None):
    """A stable name for the LUT key: the GPU model on CUDA, the CPU model otherwise."""
    device = torch.device(device or 'cpu')
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    import platform
    return f'cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads'


class LatencyLUT:
    """Latency of a window-pruned backbone as ``fixed_ms + sum_blocks table[(s, b, k_{s,b})]``.

    Args:
        num_windows (Sequence[int]): nW of each stage at the measured input shape.
        depths (Sequence[int]): blocks per stage.
        table (dict): ``{(stage, block, k): ms}`` for every k the grid can produce.
        fixed_ms (float): everything that does not depend on the ratios (patch embed, merges,
            norms, the window scoring overhead if measured so).
        meta (dict): at least ``device``, ``shape`` (H, W) and ``batch``; the JSON key.
        keep_rounding (str), min_keep (int): how a ratio becomes k (spec §2.2); must match the model.
    """

    def __init__(self, num_windows, depths, table, fixed_ms, meta, keep_rounding='exact', min_keep=0):
        if len(num_windows) != len(depths):
            raise ValueError(f'num_windows ({len(num_windows)}) and depths ({len(depths)}) must have '
                             'one entry per stage')
        for field in ('device', 'shape', 'batch'):
            if field not in meta:
                raise ValueError(f'meta must contain {field!r} (the LUT key), got {sorted(meta)}')
        self.num_windows = [int(n) for n in num_windows]
        self.depths = [int(d) for d in depths]
        self.table = {(int(s), int(b), int(k)): float(v) for (s, b, k), v in table.items()}
        self.fixed_ms = float(fixed_ms)
        self.meta = dict(meta, shape=[int(x) for x in meta['shape']], batch=int(meta['batch']))
        self.keep_rounding = keep_rounding
        self.min_keep = int(min_keep)

    @staticmethod
    def make_key(device, shape, batch):
        return f'{device}|{int(shape[0])}x{int(shape[1])}|batch{int(batch)}'

    @property
    def key(self):
        return self.make_key(self.meta['device'], self.meta['shape'], self.meta['batch'])

    # ------------------------------------------------------------------ measuring
    @classmethod
    def measure(cls, measure_block, measure_fixed, num_windows, depths, choices, meta,
                keep_rounding='exact', min_keep=0):
        """Build a LUT by calling ``measure_block(stage, block, k) -> ms`` for every block and every k
        a ratio in ``choices`` can give, and ``measure_fixed() -> ms`` once."""
        table = {}
        for s, (nw, depth) in enumerate(zip(num_windows, depths)):
            ks = sorted({num_kept_windows(nw, r, keep_rounding, min_keep) for r in choices})
            for b in range(depth):
                for k in ks:
                    table[(s, b, k)] = float(measure_block(s, b, k))
        return cls(num_windows, depths, table, float(measure_fixed()), meta, keep_rounding, min_keep)

    @classmethod
    def calibrate(cls, time_config, num_windows, depths, choices, meta, keep_rounding='exact',
                  min_keep=0):
        """Build a LUT from whole-model timings only, so no access to single blocks is needed.

        Model: ``latency = fixed + sum_blocks c_s(k)`` with blocks of a stage costing alike at the
        same k. ``fixed`` is the dense time and ``table[(s, b, k)] = (T(stage s uniform at r) -
        T(dense)) / depth_s``, i.e. each block's saving relative to dense (<= 0 up to noise).
        Overheads that do not scale per block (scoring a stage once) are spread over its blocks;
        :meth:`relative_errors` against direct timing shows what that costs.

        Args:
            time_config (callable): ``block_ratios -> ms``, e.g. :func:`direct_latency_fn`.
            num_windows, depths, choices, meta, keep_rounding, min_keep: as in :meth:`measure`.
        """
        dense = [[0.0] * int(d) for d in depths]
        t_dense = float(time_config(dense))
        table = {}
        for s, (nw, depth) in enumerate(zip(num_windows, depths)):
            for r in choices:
                k = num_kept_windows(nw, r, keep_rounding, min_keep)
                if (s, 0, k) in table:
                    continue
                if k == nw:
                    saving = 0.0  # the dense path (§2.8)
                else:
                    config = [list(stage) for stage in dense]
                    config[s] = [float(r)] * int(depth)
                    saving = (float(time_config(config)) - t_dense) / int(depth)
                for b in range(int(depth)):
                    table[(s, b, k)] = saving
        return cls(num_windows, depths, table, t_dense, meta, keep_rounding, min_keep)

    # ------------------------------------------------------------------ estimating
    def parts(self, block_ratios):
        """``{'fixed': ms, (s, b, k): ms, ...}``, the terms of :meth:`estimate`."""
        if len(block_ratios) != len(self.depths) or any(
                len(r) != d for r, d in zip(block_ratios, self.depths)):
            raise ValueError(f'block_ratios must have per-stage lists of lengths {self.depths}, '
                             f'got {block_ratios}')
        out = {'fixed': self.fixed_ms}
        for s, stage in enumerate(block_ratios):
            for b, r in enumerate(stage):
                k = num_kept_windows(self.num_windows[s], r, self.keep_rounding, self.min_keep)
                if (s, b, k) not in self.table:
                    raise ValueError(f'block_ratios[{s}][{b}] = {r} gives k={k} windows, which the LUT '
                                     f'({self.key}) has not measured')
                out[(s, b, k)] = self.table[(s, b, k)]
        return out

    def estimate(self, block_ratios):
        """Estimated latency (ms) of a configuration given as per-stage per-block ratios."""
        return math.fsum(self.parts(block_ratios).values())

    def relative_errors(self, configs, direct_ms):
        """``(estimate - direct) / direct`` for each of ``configs`` (per-stage per-block ratios),
        with ``direct_ms(block_ratios) -> ms`` a real measurement (issue 7 asks for <= 5 %)."""
        errors = []
        for cfg in configs:
            direct = float(direct_ms(cfg))
            errors.append((self.estimate(cfg) - direct) / direct)
        return errors

    # ------------------------------------------------------------------ JSON
    def to_dict(self):
        return dict(num_windows=self.num_windows, depths=self.depths, fixed_ms=self.fixed_ms,
                    meta=self.meta, keep_rounding=self.keep_rounding, min_keep=self.min_keep,
                    table=[[s, b, k, v] for (s, b, k), v in sorted(self.table.items())])

    @classmethod
    def from_dict(cls, d):
        table = {(s, b, k): v for s, b, k, v in d['table']}
        return cls(d['num_windows'], d['depths'], table, d['fixed_ms'], d['meta'], d['keep_rounding'],
                   d['min_keep'])

    def save(self, path):
        """Store under :attr:`key` in the JSON file ``path``, keeping the other keys (atomic write)."""
        entries = {}
        if os.path.isfile(path):
            with open(path) as f:
                entries = json.load(f)
        entries[self.key] = self.to_dict()
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.lut_', suffix='.json')
        with os.fdopen(fd, 'w') as f:
            json.dump(entries, f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, device, shape, batch):
        """The LUT stored for (device, shape, batch) in ``path``, or None if there is none."""
        if not os.path.isfile(path):
            return None
        try:
            with open(path) as f:
                entries = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'latency LUT file {path} is not valid JSON: {e}') from e
        entry = entries.get(cls.make_key(device, shape, batch))
        return None if entry is None else cls.from_dict(entry)

"""Latency measurement and a per-block latency look-up table (docs/method/sparsevit.md, 6).

* :func:`interquartile_mean` is the reference's statistic: sort, drop 25 % at each end, average the
  rest. Across processes the samples are **concatenated first** (:func:`gather_samples`); the
  reference trims the list of per-rank lists instead, which on one process leaves nothing: its latency
  is NaN and no search candidate is ever feasible.
* :func:`time_fn` times a callable: warm-up, then timed iterations, each synchronised on CUDA.
* :class:`LatencyLUT` estimates a configuration's latency as a fixed part plus one entry per block
  (on the dense path, or on the window path with k kept windows) plus one per stage that enters the
  window path. Entries are measured through a :class:`BlockTimer` supplied from above, so this file
  knows nothing about the model.

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

from .window_selection import first_pruned_block, num_kept_windows


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


def time_fn(fn, warmup=200, iters=300, device=None, chunk=1):
    """Call ``fn()`` ``warmup`` times, then time ``iters`` calls.

    Args:
        fn (callable): the work, e.g. ``lambda: backbone(x)`` under ``torch.inference_mode()``.
        warmup (int): untimed calls (cudnn autotuning, caches). Reference: 200.
        iters (int): timed calls. Reference: 300.
        device (torch.device | str | None): on a CUDA device the clock reads are synchronised, so the
            time covers the kernels and not only their launch.
        chunk (int): calls timed together between two clock reads; each sample is their mean.
            1 (the reference) times every call alone. A larger chunk lets a GPU run one call's kernels
            while the next is launched, as the parts of a whole forward do, so the time of a small
            part is its throughput cost rather than launch + kernels + a synchronisation.

    Returns:
        list[float]: ``max(1, iters // chunk)`` wall times in ms, one per chunk, per call.
    """
    if warmup < 0 or iters < 1 or chunk < 1:
        raise ValueError(f'warmup must be >= 0, iters >= 1 and chunk >= 1, got {warmup}, {iters}, '
                         f'{chunk}')
    cuda = device is not None and torch.device(device).type == 'cuda'

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(max(1, iters // chunk)):
        sync()
        start = time.perf_counter()
        for _ in range(chunk):
            fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3 / chunk)
    return times


def direct_latency_fn(module, input_shape, batch=1, device=None, warmup=200, iters=300):
    """``block_ratios -> ms``: set the ratios on ``module`` (anything with ``set_pruning_ratios``) and
    time its forward on ``randn(batch, 3, H, W)`` in eval + inference mode; the IQM of every
    process's samples together (docs/method/sparsevit.md, 6.1). The reference times the backbone only,
    at batch 4, in fp32."""
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


class BlockTimer:
    """What :meth:`LatencyLUT.measure` needs from a model: each part of a pruned forward, timed alone.

    Times are ms (e.g. the :func:`distributed_iqm` of :func:`time_fn` samples). The model layer
    implements it (``mmsparse.models.SwinBlockTimer``), so this file stays free of the model.
    """

    def window_block(self, stage: int, block: int, k: int) -> float:
        """Block ``block`` of ``stage`` on the window path with ``k`` kept windows per image (gather,
        the block on the windows, scatter)."""
        raise NotImplementedError

    def dense_block(self, stage: int, block: int) -> float:
        """The block on the dense path (before the stage's first pruned block b*)."""
        raise NotImplementedError

    def stage_entry(self, stage: int) -> float:
        """Entering and leaving the window path once: scoring, the padded copy, the rankings, the
        un-padding."""
        raise NotImplementedError

    def whole(self, block_ratios) -> float:
        """The whole model's forward with ``block_ratios``."""
        raise NotImplementedError


class LatencyLUT:
    """Latency of a window-pruned backbone, additive over its forward's parts (docs/method/sparsevit.md, 6.2).

    ``estimate = fixed_ms + sum over stages of`` either ``sum_b dense_ms[(s, b)]`` (a dense stage) or
    ``sum_{b < b*} dense_ms[(s, b)] + entry_ms[s] + sum_{b >= b*} table[(s, b, k_{s,b})]``, with b* the
    stage's first pruned block (:func:`first_pruned_block`), so a block with r = 0 costs what it
    costs on the path it runs on.

    Args:
        num_windows (Sequence[int]): nW of each stage at the measured input shape.
        depths (Sequence[int]): blocks per stage.
        table (dict): ``{(stage, block, k): ms}`` on the window path, for every k the grid can produce.
        fixed_ms (float): everything that does not depend on the ratios (patch embed, merges, norms).
        meta (dict): at least ``device``, ``shape`` (H, W) and ``batch``; the JSON key.
        keep_rounding (str), min_keep (int): how a ratio becomes k (docs/method/sparsevit.md, 2.2);
            must match the model.
        dense_ms (dict | None): ``{(stage, block): ms}`` on the dense path; missing entries are 0.
        entry_ms (dict | None): ``{stage: ms}`` of entering the window path; missing entries are 0.
        force_window_path (bool): the model runs the window path even at r = 0 (b* = 0 always).
        dense_scale, window_scale (float): factors on the dense-path and window-path terms, fitted
            by :meth:`fit` (1 when not fitted).
        fit (dict | None): what :meth:`fit` measured (its configurations' residuals).
        choices (Sequence[float] | None): the ratio grid the table was measured for.
    """

    def __init__(self,
                 num_windows,
                 depths,
                 table,
                 fixed_ms,
                 meta,
                 keep_rounding='exact',
                 min_keep=0,
                 dense_ms=None,
                 entry_ms=None,
                 force_window_path=False,
                 dense_scale=1.0,
                 window_scale=1.0,
                 fit=None,
                 choices=None):
        if len(num_windows) != len(depths):
            raise ValueError(f'num_windows ({len(num_windows)}) and depths ({len(depths)}) must have '
                             'one entry per stage')
        for field in ('device', 'shape', 'batch'):
            if field not in meta:
                raise ValueError(f'meta must contain {field!r} (the LUT key), got {sorted(meta)}')
        self.num_windows = [int(n) for n in num_windows]
        self.depths = [int(d) for d in depths]
        self.table = {(int(s), int(b), int(k)): float(v) for (s, b, k), v in table.items()}
        self.dense_ms = {(int(s), int(b)): float(v) for (s, b), v in (dense_ms or {}).items()}
        self.entry_ms = {int(s): float(v) for s, v in (entry_ms or {}).items()}
        self.fixed_ms = float(fixed_ms)
        self.meta = dict(meta, shape=[int(x) for x in meta['shape']], batch=int(meta['batch']))
        self.keep_rounding = keep_rounding
        self.min_keep = int(min_keep)
        self.force_window_path = bool(force_window_path)
        self.dense_scale = float(dense_scale)
        self.window_scale = float(window_scale)
        self.fit_report = fit
        self.choices = None if choices is None else [float(c) for c in choices]

    @staticmethod
    def make_key(device, shape, batch):
        return f'{device}|{int(shape[0])}x{int(shape[1])}|batch{int(batch)}'

    @property
    def key(self):
        return self.make_key(self.meta['device'], self.meta['shape'], self.meta['batch'])

    def _grid_ks(self, stage, choices):
        return sorted({
            num_kept_windows(self.num_windows[stage], r, self.keep_rounding, self.min_keep)
            for r in choices
        })

    # ------------------------------------------------------------------ measuring
    @classmethod
    def measure(cls,
                timer,
                num_windows,
                depths,
                choices,
                meta,
                keep_rounding='exact',
                min_keep=0,
                force_window_path=False,
                rounds=1,
                progress=None):
        """Build a LUT from a :class:`BlockTimer`: each stage's window-path entry, every block on the
        dense path and at every k a ratio in ``choices`` gives, then ``fixed_ms`` as the dense whole
        model's time minus the parts the LUT holds for it.

        Args:
            timer (BlockTimer): the model's part timer.
            rounds (int): passes over all parts; each entry is the median of its passes, so a load
                spike on a shared machine spoils one pass of a few entries, not the table.
            progress (callable | None): ``progress(done, total)`` after each timing (a progress bar).
        """
        if int(rounds) < 1:
            raise ValueError(f'rounds must be >= 1, got {rounds}')
        lut = cls(
            num_windows,
            depths, {},
            0.0,
            meta,
            keep_rounding,
            min_keep,
            force_window_path=force_window_path,
            choices=choices)
        dense = [[0.0] * d for d in lut.depths]
        jobs = []  # (where the median goes, its key, the timing)
        for s, depth in enumerate(lut.depths):
            jobs.append((lut.entry_ms, s, lambda s=s: timer.stage_entry(s)))
            for b in range(depth):
                if not force_window_path:
                    jobs.append((lut.dense_ms, (s, b), lambda s=s, b=b: timer.dense_block(s, b)))
                for k in lut._grid_ks(s, choices):
                    jobs.append((lut.table, (s, b, k), lambda s=s, b=b, k=k: timer.window_block(s, b, k)))
        whole = {}
        jobs.append((whole, 'dense', lambda: timer.whole(dense)))
        samples = [[] for _ in jobs]
        total = len(jobs) * int(rounds)
        for r in range(int(rounds)):
            for j, (_, _, time_part) in enumerate(jobs):
                samples[j].append(float(time_part()))
                if progress is not None:
                    progress(r * len(jobs) + j + 1, total)
        for (store, key, _), values in zip(jobs, samples):
            store[key] = float(np.median(values))
        lut.fixed_ms = whole['dense'] - lut.estimate(dense)
        return lut

    def path_sums(self, block_ratios):
        """``(dense-path ms, window-path ms)`` of a configuration before scaling (entries included in
        the window path)."""
        dense = window = 0.0
        for key, value in self._raw_parts(block_ratios).items():
            if key == 'fixed':
                continue
            if key[0] == 'dense':
                dense += value
            else:
                window += value
        return dense, window

    def fit(self, time_config, configs):
        """A copy whose ``fixed_ms``, ``dense_scale`` and ``window_scale`` are the least-squares fit of
        ``time_config`` (whole-model timings, e.g. :func:`direct_latency_fn`) on ``configs``.

        Parts timed alone miss what overlaps inside a whole forward (a GPU runs one block's kernels
        while the next is launched), which shows as slopes off 1 rather than as noise. Fit on draws of
        the search space itself, which predicts other draws better than a fit on one-stage sweeps
        (measured: docs/benchmark.md, "Latency look-up table accuracy").

        Args:
            time_config (callable): ``block_ratios -> ms``.
            configs (list): at least 4 per-stage per-block ratio lists.

        A fit with a non-positive scale (timings that do not follow the parts, e.g. a launch-bound
        GPU) is refused: the copy keeps the measured values and ``fit_report['used']`` is False.
        """
        if len(configs) < 4:
            raise ValueError(f'fit needs at least 4 configurations (3 coefficients), got {len(configs)}')
        measured = np.array([float(time_config(c)) for c in configs])
        sums = np.array([self.path_sums(c) for c in configs])
        columns = [1] if self.force_window_path else [0, 1]  # no dense path when it is forced
        design = np.column_stack([np.ones(len(configs)), sums[:, columns]])
        coef = np.linalg.lstsq(design, measured, rcond=None)[0]
        used = bool(np.all(coef[1:] > 0))
        names = ('dense_scale', 'window_scale')[-len(columns):]
        scales = {n: float(v) for n, v in zip(names, coef[1:])} if used else {}
        fitted = LatencyLUT(
            self.num_windows,
            self.depths,
            self.table,
            float(coef[0]) if used else self.fixed_ms,
            self.meta,
            self.keep_rounding,
            self.min_keep,
            self.dense_ms,
            self.entry_ms,
            self.force_window_path,
            choices=self.choices,
            **scales)
        residuals = [(fitted.estimate(c) - t) / t for c, t in zip(configs, measured)]
        fitted.fit_report = dict(
            used=used,
            configs=len(configs),
            coef=[float(c) for c in coef],
            max_abs_residual=float(np.abs(residuals).max()))
        return fitted

    @classmethod
    def calibrate(cls, time_config, num_windows, depths, choices, meta, keep_rounding='exact', min_keep=0):
        """Build a LUT from whole-model timings only, for a model without a :class:`BlockTimer`.

        Model: ``latency = fixed + sum_blocks c_s(k)`` with blocks of a stage costing alike at the
        same k. ``fixed`` is the dense time and ``table[(s, b, k)] = (T(stage s uniform at r) -
        T(dense)) / depth_s``, i.e. each block's saving relative to dense (<= 0 up to noise). Overheads
        that do not scale per block (entering the window path) are spread over the stage's blocks,
        which over-estimates partly pruned stages, by far more than :meth:`measure` does (measured:
        docs/benchmark.md, "Latency look-up table accuracy").

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
                    saving = 0.0  # the dense path (docs/method/sparsevit.md, 2.8)
                else:
                    config = [list(stage) for stage in dense]
                    config[s] = [float(r)] * int(depth)
                    saving = (float(time_config(config)) - t_dense) / int(depth)
                for b in range(int(depth)):
                    table[(s, b, k)] = saving
        return cls(num_windows, depths, table, t_dense, meta, keep_rounding, min_keep, choices=choices)

    # ------------------------------------------------------------------ estimating
    def parts(self, block_ratios):
        """The terms of :meth:`estimate`: ``{'fixed': ms, ('dense', s, b): ms, ('entry', s): ms,
        (s, b, k): ms, ...}``, scaled by ``dense_scale`` / ``window_scale``."""
        return {
            key:
            value if key == 'fixed' else value *
            (self.dense_scale if key[0] == 'dense' else self.window_scale)
            for key, value in self._raw_parts(block_ratios).items()
        }

    def _raw_parts(self, block_ratios):
        if len(block_ratios) != len(self.depths) or any(
                len(r) != d for r, d in zip(block_ratios, self.depths)):
            raise ValueError(f'block_ratios must have per-stage lists of lengths {self.depths}, '
                             f'got {block_ratios}')
        out = {'fixed': self.fixed_ms}
        for s, stage in enumerate(block_ratios):
            bstar = first_pruned_block(stage, self.force_window_path)
            num_dense = len(stage) if bstar is None else bstar
            for b in range(num_dense):
                out[('dense', s, b)] = self.dense_ms.get((s, b), 0.0)
            if bstar is None:
                continue
            out[('entry', s)] = self.entry_ms.get(s, 0.0)
            for b in range(bstar, len(stage)):
                r = stage[b]
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
        with ``direct_ms(block_ratios) -> ms`` a real measurement (the search needs <= 5 %:
        docs/method/sparsevit.md, 6.2)."""
        errors = []
        for cfg in configs:
            direct = float(direct_ms(cfg))
            errors.append((self.estimate(cfg) - direct) / direct)
        return errors

    # ------------------------------------------------------------------ JSON
    def to_dict(self):
        return dict(
            num_windows=self.num_windows,
            depths=self.depths,
            fixed_ms=self.fixed_ms,
            meta=self.meta,
            keep_rounding=self.keep_rounding,
            min_keep=self.min_keep,
            force_window_path=self.force_window_path,
            dense_scale=self.dense_scale,
            window_scale=self.window_scale,
            fit=self.fit_report,
            choices=self.choices,
            table=[[s, b, k, v] for (s, b, k), v in sorted(self.table.items())],
            dense_ms=[[s, b, v] for (s, b), v in sorted(self.dense_ms.items())],
            entry_ms=[[s, v] for s, v in sorted(self.entry_ms.items())])

    @classmethod
    def from_dict(cls, d):
        table = {(s, b, k): v for s, b, k, v in d['table']}
        dense = {(s, b): v for s, b, v in d.get('dense_ms', [])}
        entry = {s: v for s, v in d.get('entry_ms', [])}
        return cls(d['num_windows'], d['depths'], table, d['fixed_ms'], d['meta'], d['keep_rounding'],
                   d['min_keep'], dense, entry, d.get('force_window_path', False), d.get('dense_scale', 1.0),
                   d.get('window_scale', 1.0), d.get('fit'), d.get('choices'))

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

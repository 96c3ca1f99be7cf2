"""How the evolution search costs a candidate: MACs of the backbone, or its latency (LUT or timed).

:class:`SearchConstraint` is the validated ``constraint=dict(kind=..., max=..., min=...)`` of the
loop; each builder returns ``block_ratios -> value`` (G MACs or ms) that it is compared with.
"""
import json
import os.path as osp

import numpy as np
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmsparse.sparsity.latency import LatencyLUT, device_name, direct_latency_fn
from mmsparse.utils.errors import InputNotFoundError

CONSTRAINT_KINDS = ('macs', 'latency')
UNITS = dict(macs='G MACs', latency='ms')


class SearchConstraint:
    """The search budget, validated once: what is measured, the allowed window, how it is measured.

    Built from the loop's ``constraint`` dict; a key outside :attr:`DEFAULTS` is refused with the
    allowed ones named (a misspelled ``lut_round=3`` would otherwise do nothing).

    Keys (units): ``kind`` 'macs' (G MACs of ``batch`` images) or 'latency' (ms); ``max``/``min`` the
    window (either may be None); ``batch``; ``cost_fn`` (``block_ratios -> G MACs``, replaces the
    backbone's ``macs()``) and ``cost_kwargs`` (keyword overrides passed to the backbone's ``macs()``,
    e.g. ``convention='paper'``); latency only:
    ``direct`` (time every candidate instead of a look-up table), ``lut`` (table file, default
    ``<work_dir>/latency_lut.json``), ``device_name``, ``build_lut`` (measure a missing table),
    ``warmup``/``iters`` (calls per timing), ``lut_warmup``/``lut_iters`` (the same while building
    the table; default ``warmup``/``iters``), ``lut_rounds`` (passes over the table entries, >= 1),
    ``lut_fit`` (random configurations the table is fitted to, 0 or >= 4), ``validate`` (configurations
    timed directly to rate the table) and ``validate_seed``.
    """
    DEFAULTS = dict(
        kind='macs',
        max=None,
        min=None,
        batch=1,
        cost_fn=None,
        cost_kwargs=None,
        direct=False,
        lut=None,
        device_name=None,
        build_lut=True,
        warmup=200,
        iters=300,
        lut_warmup=None,
        lut_iters=None,
        lut_rounds=3,
        lut_fit=16,
        validate=0,
        validate_seed=12345)
    # settings that change how a latency table is measured or rated, not what a candidate costs
    _NOT_IN_FINGERPRINT = ('cost_fn', 'validate', 'validate_seed', 'build_lut', 'lut_warmup', 'lut_iters',
                           'lut_rounds', 'lut_fit')

    def __init__(self, constraint=None):
        if isinstance(constraint, SearchConstraint):
            constraint = constraint.to_dict()
        given = dict(constraint or {})
        unknown = sorted(set(given) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f'constraint: unknown key(s) {unknown}; allowed keys: {sorted(self.DEFAULTS)}')
        values = {**self.DEFAULTS, **given}
        if values['kind'] not in CONSTRAINT_KINDS:
            raise ValueError(f"constraint.kind must be one of {CONSTRAINT_KINDS}, got {values['kind']!r}")
        lo, hi = values['min'], values['max']
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f'constraint.min ({lo}) must not exceed constraint.max ({hi})')
        if int(values['batch']) < 1:
            raise ValueError(f"constraint.batch must be >= 1, got {values['batch']!r}")
        if int(values['lut_rounds']) < 1:
            raise ValueError(f"constraint.lut_rounds must be >= 1 (passes over the LUT entries), got "
                             f"{values['lut_rounds']!r}")
        if int(values['lut_fit']) < 0 or 0 < int(values['lut_fit']) < 4:
            raise ValueError(f"constraint.lut_fit must be 0 (no fit) or >= 4 configurations "
                             f"(3 coefficients), got {values['lut_fit']!r}")
        if int(values['validate']) < 0:
            raise ValueError(f"constraint.validate must be >= 0 configurations, got {values['validate']!r}")
        self.__dict__.update(values)

    def to_dict(self):
        return {k: getattr(self, k) for k in self.DEFAULTS}

    def feasible(self, value: float) -> bool:
        """Whether ``value`` (in the unit of ``kind``) lies in the ``[min, max]`` window."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self, input_shape) -> str:
        """``'macs <= 116.5 G MACs (batch 4, 672x672)'``: the budget in words, for logs and errors."""
        lo = '' if self.min is None else f'{self.min} <= '
        hi = '' if self.max is None else f' <= {self.max}'
        return (f'{lo}{self.kind}{hi} {UNITS[self.kind]} (batch {self.batch}, '
                f'{input_shape[0]}x{input_shape[1]})')

    def fingerprint(self) -> dict:
        """What a candidate's cost depends on (JSON types): a resume must not change it."""
        kept = {k: v for k, v in self.to_dict().items() if k not in self._NOT_IN_FINGERPRINT}
        return json.loads(json.dumps(kept, default=str))

    def __repr__(self):
        given = {k: v for k, v in self.to_dict().items() if v != self.DEFAULTS[k]}
        return f'SearchConstraint({given})'


def build_macs_fn(backbone, input_shape, batch, cost_kwargs=None, name='the backbone'):
    """``block_ratios -> G MACs`` of ``batch`` images through ``backbone``, by the backbone's own
    ``macs(hw, ratios, batch, **overrides)`` (docs/method/sparsevit.md, 4); ``cost_kwargs`` are the
    overrides (e.g. ``convention='paper'``). ``name``: the backbone's name in the model, for errors."""
    if not callable(getattr(backbone, 'macs', None)):
        raise ValueError(f"constraint.kind='macs' needs a backbone with macs(hw, ratios, batch) (such as "
                         f"mmsparse.SparseSwin) or an injected constraint.cost_fn (block_ratios -> G MACs); "
                         f'{name} ({type(backbone).__name__}) has no macs()')
    shape, batch, overrides = tuple(input_shape), int(batch), dict(cost_kwargs or {})
    backbone.macs(shape, None, batch, **overrides)  # refuses bad overrides before the search starts
    arguments = backbone.macs_arguments() if callable(getattr(backbone, 'macs_arguments', None)) else {}
    print_log(
        f'MACs model: {type(backbone).__name__}.macs({shape}, batch={batch}, {overrides}) with the '
        f'architecture {arguments}',
        logger='current')
    return lambda block_ratios: backbone.macs(shape, block_ratios, batch, **overrides) / 1e9


def build_latency_fn(backbone, c, input_shape, device, work_dir, space):
    """``(block_ratios -> ms, lut_errors)``: direct timing (``c.direct``) or the LUT stored for
    this device/shape/batch in ``c.lut`` (default ``<work_dir>/latency_lut.json``), measured and
    stored there first if missing (unless ``c.build_lut`` is False).
    ``c.validate = N`` times N random configurations directly and returns the LUT's relative
    errors (the target is <= 5 %); ``lut_errors`` is None otherwise. ``c``: :class:`SearchConstraint`."""
    batch = int(c.batch)
    direct = direct_latency_fn(backbone, input_shape, batch, device, int(c.warmup), int(c.iters))
    if c.direct:
        return direct, None
    path = c.lut or osp.join(work_dir, 'latency_lut.json')
    dev = c.device_name or device_name(device)
    lut = LatencyLUT.load(path, dev, input_shape, batch)
    if lut is None and c.build_lut:
        lut = _measure_lut(backbone, c, input_shape, device, dev, space)
        if is_main_process():
            lut.save(path)
        dense_ms = lut.estimate([[0.0] * d for d in lut.depths])
        print_log(
            f'latency LUT for {lut.key} measured (dense {dense_ms:.3f} ms; fit {lut.fit_report}) '
            f'and saved to {path}',
            logger='current')
    if lut is None:
        raise InputNotFoundError(f'no latency LUT for {LatencyLUT.make_key(dev, input_shape, batch)} in '
                                 f'{path} (build_lut=False): measure one, or set constraint.direct=True')
    errors = None
    if c.validate:
        rng = np.random.default_rng(int(c.validate_seed))  # not the search RNG
        configs = space.sample_block_ratios(rng, int(c.validate))
        errors = lut.relative_errors(configs, direct)
        print_log(
            f'latency LUT vs direct timing on {len(configs)} configurations: relative errors '
            f'{[round(e, 4) for e in errors]}, max |error| {max(abs(e) for e in errors):.2%} '
            '(target <= 5 %)',
            logger='current')
    return lut.estimate, errors


def _measure_lut(backbone, c, input_shape, device, dev, space):
    """A LUT for ``backbone``, measured part by part by its ``block_timer()``
    (:func:`~mmsparse.models.backbones.swin_block_timer.measure_swin_lut`, ``lut_rounds`` passes) and
    then fitted to whole-model timings of ``lut_fit`` random configurations (0: no fit);
    ``lut_warmup``/``lut_iters`` per timing (default ``warmup``/``iters``)."""
    if not callable(getattr(backbone, 'block_timer', None)):
        raise ValueError(f"constraint.kind='latency' measures its look-up table with the backbone's "
                         f'block_timer() (such as mmsparse.SparseSwin has); {type(backbone).__name__} has '
                         'none: give constraint.lut a measured table, or time every candidate with '
                         'constraint.direct=True')
    from mmsparse.models.backbones.swin_block_timer import measure_swin_lut
    warmup = int(c.warmup if c.lut_warmup is None else c.lut_warmup)
    iters = int(c.iters if c.lut_iters is None else c.lut_iters)
    bars = []

    def progress(done, total):
        if not is_main_process():
            return
        if not bars:
            bars.append(ProgressBar(total))
        bars[0].update()

    fit_configs = space.sample_block_ratios(np.random.default_rng(54321), int(c.lut_fit))
    return measure_swin_lut(
        backbone,
        input_shape,
        space.choices,
        int(c.batch),
        device,
        warmup,
        iters,
        dev,
        int(c.lut_rounds),
        progress,
        fit_configs=fit_configs)

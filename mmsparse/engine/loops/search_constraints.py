"""How the evolution search costs a candidate: MACs of the backbone, or its latency (LUT or timed).

Each builder returns ``block_ratios -> value`` (G MACs or ms); the loop compares the value with the
``constraint=dict(kind=..., max=..., min=...)`` window.
"""
import os.path as osp

import numpy as np
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmsparse.sparsity.latency import LatencyLUT, device_name, direct_latency_fn
from mmsparse.utils.errors import InputNotFoundError

CONSTRAINT_KINDS = ('macs', 'latency')
UNITS = dict(macs='G MACs', latency='ms')


def check_constraint(constraint):
    """Validated copy of the ``constraint`` dict (``kind`` 'macs' by default, ``batch`` 1)."""
    c = dict(constraint or dict(kind='macs'))
    if c.get('kind') not in CONSTRAINT_KINDS:
        raise ValueError(f"constraint.kind must be one of {CONSTRAINT_KINDS}, got {c.get('kind')!r}")
    lo, hi = c.get('min'), c.get('max')
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f'constraint.min ({lo}) must not exceed constraint.max ({hi})')
    c.setdefault('batch', 1)
    if int(c.get('lut_rounds', 3)) < 1:
        raise ValueError(f"constraint.lut_rounds must be >= 1 (passes over the LUT entries), got "
                         f"{c['lut_rounds']!r}")
    if int(c.get('lut_fit', 16)) < 0 or 0 < int(c.get('lut_fit', 16)) < 4:
        raise ValueError(f"constraint.lut_fit must be 0 (no fit) or >= 4 configurations (3 coefficients), "
                         f"got {c['lut_fit']!r}")
    return c


def describe_constraint(c, input_shape):
    """``'macs <= 116.5 G MACs (batch 4, 672x672)'``: the budget in words, for logs and errors."""
    lo = '' if c.get('min') is None else f"{c['min']} <= "
    hi = '' if c.get('max') is None else f" <= {c['max']}"
    return (f"{lo}{c['kind']}{hi} {UNITS[c['kind']]} (batch {c['batch']}, "
            f'{input_shape[0]}x{input_shape[1]})')


def swin_cost_kwargs(backbone):
    """Architecture arguments of :func:`mmsparse.sparsity.cost.swin_macs` read from an mmdet-style
    Swin backbone (``patch_embed.projection``, ``stages[s].blocks[b].attn.w_msa``, ``ffn``); the
    ones it cannot find stay at the Swin-T defaults of ``swin_macs``."""
    kwargs = dict(depths=tuple(len(s) for s in backbone.get_pruning_ratios()))
    try:
        proj = backbone.patch_embed.projection
        kwargs.update(embed_dims=proj.out_channels, patch_size=proj.kernel_size[0],
                      in_channels=proj.in_channels)
        block = backbone.stages[0].blocks[0]
        kwargs.update(window_size=block.attn.w_msa.window_size[0],
                      mlp_ratio=block.ffn.feedforward_channels / proj.out_channels)
        kwargs['out_indices'] = tuple(backbone.out_indices)
    except (AttributeError, IndexError, TypeError):
        pass
    options = getattr(backbone, 'window_options', None)
    for name in ('keep_rounding', 'min_keep'):
        if hasattr(options, name):
            kwargs[name] = getattr(options, name)
    return kwargs


def build_macs_fn(backbone, input_shape, batch, cost_kwargs=None):
    """``block_ratios -> G MACs`` of ``batch`` images through ``backbone`` (spec §7)."""
    try:  # the cost model lives in the torch-free core; imported late so tests can inject one
        from mmsparse.sparsity.cost import swin_macs
    except ImportError as e:
        raise ImportError('constraint.kind="macs" needs mmsparse.sparsity.cost or an injected '
                          'constraint.cost_fn') from e
    shape, batch = tuple(input_shape), int(batch)
    kwargs = swin_cost_kwargs(backbone)
    kwargs.update(cost_kwargs or {})  # explicit settings win
    print_log(f'MACs model: swin_macs({shape}, batch={batch}, {kwargs})', logger='current')
    return lambda block_ratios: swin_macs(shape, block_ratios, batch=batch, **kwargs) / 1e9


def build_latency_fn(backbone, c, input_shape, device, work_dir, space):
    """``(block_ratios -> ms, lut_errors)``: direct timing (``c['direct']``) or the LUT stored for
    this device/shape/batch in ``c['lut']`` (default ``<work_dir>/latency_lut.json``), measured and
    stored there first if missing (unless ``c['build_lut']`` is False).
    ``c['validate'] = N`` times N random configurations directly and returns the LUT's relative
    errors (issue 7 targets <= 5 %); ``lut_errors`` is None otherwise."""
    batch = int(c['batch'])
    direct = direct_latency_fn(backbone, input_shape, batch, device, int(c.get('warmup', 200)),
                               int(c.get('iters', 300)))
    if c.get('direct'):
        return direct, None
    path = c.get('lut') or osp.join(work_dir, 'latency_lut.json')
    dev = c.get('device_name') or device_name(device)
    lut = LatencyLUT.load(path, dev, input_shape, batch)
    if lut is None and c.get('build_lut', True):
        lut = _measure_lut(backbone, c, input_shape, device, dev, space)
        if is_main_process():
            lut.save(path)
        dense_ms = lut.estimate([[0.0] * d for d in lut.depths])
        print_log(f'latency LUT for {lut.key} measured (dense {dense_ms:.3f} ms; fit {lut.fit_report}) '
                  f'and saved to {path}', logger='current')
    if lut is None:
        raise InputNotFoundError(f'no latency LUT for {LatencyLUT.make_key(dev, input_shape, batch)} in '
                                f'{path} (build_lut=False): measure one, or set constraint.direct=True')
    errors = None
    if c.get('validate', 0):
        rng = np.random.default_rng(int(c.get('validate_seed', 12345)))  # not the search RNG
        configs = space.sample_block_ratios(rng, c['validate'])
        errors = lut.relative_errors(configs, direct)
        print_log(f'latency LUT vs direct timing on {len(configs)} configurations: relative errors '
                  f'{[round(e, 4) for e in errors]}, max |error| {max(abs(e) for e in errors):.2%} '
                  '(target <= 5 %)', logger='current')
    return lut.estimate, errors


def _measure_lut(backbone, c, input_shape, device, dev, space):
    """A LUT for ``backbone``: part by part through :func:`measure_swin_lut` when it is a
    ``SparseSwin`` (``lut_rounds`` passes, default 3; then fitted to whole-model timings of
    ``lut_fit`` random configurations, default 16, 0 for none), else from whole-backbone timings
    (:meth:`LatencyLUT.calibrate`); ``lut_warmup``/``lut_iters`` per timing (default
    ``warmup``/``iters``)."""
    from mmsparse.models.backbones import SparseSwin, measure_swin_lut
    warmup = int(c.get('lut_warmup', c.get('warmup', 200)))
    iters = int(c.get('lut_iters', c.get('iters', 300)))
    batch = int(c['batch'])
    if isinstance(backbone, SparseSwin):
        bars = []

        def progress(done, total):
            if not is_main_process():
                return
            if not bars:
                bars.append(ProgressBar(total))
            bars[0].update()

        fit_configs = space.sample_block_ratios(np.random.default_rng(54321), c.get('lut_fit', 16))
        return measure_swin_lut(backbone, input_shape, space.choices, batch, device, warmup, iters, dev,
                                int(c.get('lut_rounds', 3)), progress, fit_configs=fit_configs)
    from mmsparse.sparsity.cost import swin_macs_breakdown
    kwargs = swin_cost_kwargs(backbone)
    num_windows = swin_macs_breakdown(tuple(input_shape), None, **kwargs)['num_windows']
    timer = direct_latency_fn(backbone, input_shape, batch, device, warmup, iters)
    meta = dict(device=dev, shape=list(input_shape), batch=batch)
    return LatencyLUT.calibrate(timer, num_windows, list(space.depths), space.choices, meta,
                                kwargs.get('keep_rounding', 'exact'), kwargs.get('min_keep', 0))

"""Accuracy of the latency look-up table (docs/method/sparsevit.md, 6.2; target |error| <= 5 %).

Measures a LUT for a SparseSwin block by block (what ``EvolutionSearchLoop`` does with
``constraint=dict(kind='latency')``), then times configurations directly and prints each estimate, the
direct time and the relative error, for the LUT as measured and fitted to whole-model timings
(``LatencyLUT.fit``). Configurations: dense, the named published sets, and ``--configs``
random draws of the search space. ``--calibrated`` also rates the older LUT calibrated from
whole-backbone timings.

Example (the numbers of docs/benchmark.md)::

    python tools/analysis_tools/lut_accuracy.py mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py \
        --shape 672 672 --batch 4 --device cuda --configs 10
"""
import argparse
import json
import sys
import time

import numpy as np
import torch
from benchmark_backbone import add_backbone_args, build_models, load_backbone_cfg


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_backbone_args(p)
    p.add_argument('--configs', type=int, default=10, help='random configurations to check')
    p.add_argument('--warmup', type=int, default=20, help='untimed calls per direct timing')
    p.add_argument('--iters', type=int, default=50, help='timed calls per direct timing')
    p.add_argument('--lut-warmup', type=int, default=None, help='per LUT entry (default --warmup)')
    p.add_argument('--lut-iters', type=int, default=None, help='per LUT entry (default --iters)')
    p.add_argument('--lut-rounds', type=int, default=3, help='passes over the LUT entries (median)')
    p.add_argument(
        '--lut-chunk',
        type=int,
        nargs='+',
        default=[10],
        help='calls timed together per LUT sample; several values rate one LUT each')
    p.add_argument(
        '--fit-configs',
        type=int,
        default=16,
        help='random configurations the fitted LUT is fitted on (LatencyLUT.fit)')
    p.add_argument(
        '--calibrated', action='store_true', help='also rate the LUT calibrated from whole-backbone timings')
    p.add_argument('--json', default=None, help='also write the results to this JSON file')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmsparse.models.backbones import measure_swin_lut
    from mmsparse.sparsity.latency import LatencyLUT, direct_latency_fn
    from mmsparse.sparsity.ratios import PUBLISHED_RATIOS, validate_pruning_ratios
    from mmsparse.sparsity.search_space import SwinRatioSpace
    bb_cfg = load_backbone_cfg(args.config)
    bb_cfg['fused_attention'] = not args.unfused
    _, sparse = build_models(bb_cfg, args.seed, args.device)
    shape = tuple(args.shape)
    lut_warmup = args.warmup if args.lut_warmup is None else args.lut_warmup
    lut_iters = args.iters if args.lut_iters is None else args.lut_iters
    space = SwinRatioSpace(sparse.depths)

    luts, lut_s = {}, {}
    for chunk in args.lut_chunk:
        start = time.perf_counter()
        label = f'block by block, chunk {chunk}'
        luts[label] = lut = measure_swin_lut(
            sparse,
            shape,
            space.choices,
            args.batch,
            args.device,
            lut_warmup,
            lut_iters,
            rounds=args.lut_rounds,
            chunk=chunk,
            fit_configs=None)
        lut_s[label] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        fit_rng = np.random.default_rng(args.seed + 1)  # draws apart from the rated ones
        luts[label + ', fitted'] = fitted = lut.fit(
            direct_latency_fn(sparse, shape, args.batch, args.device, lut_warmup, lut_iters),
            space.sample_block_ratios(fit_rng, args.fit_configs))
        lut_s[label + ', fit'] = round(time.perf_counter() - start, 1)
        print(f'# {label}: fit {fitted.fit_report}')
    direct = direct_latency_fn(sparse, shape, args.batch, args.device, args.warmup, args.iters)
    if args.calibrated:
        luts['whole-backbone calibrated'] = LatencyLUT.calibrate(
            direct_latency_fn(sparse, shape, args.batch, args.device, lut_warmup, lut_iters), lut.num_windows,
            lut.depths, space.choices, lut.meta)

    rng = np.random.default_rng(args.seed)
    configs = [('dense', [[0.0] * d for d in sparse.depths])]
    configs += [(name, [list(s) for s in validate_pruning_ratios(r, sparse.depths)])
                for name, r in PUBLISHED_RATIOS.items() if name != 'dense']
    drawn = space.sample_block_ratios(rng, args.configs)
    configs += [(f'random {i}', ratios) for i, ratios in enumerate(drawn)]
    rows = []
    for name, block_ratios in configs:
        ms = direct(block_ratios)
        row = dict(name=name, ratios=block_ratios, direct_ms=ms)
        for label, table in luts.items():
            est = table.estimate(block_ratios)
            row[label] = dict(estimate_ms=est, error=(est - ms) / ms)
        rows.append(row)

    print(f'# latency LUT vs direct timing: {lut.key}, torch {torch.__version__}, threads '
          f'{torch.get_num_threads()}, LUT measured in {lut_s} s ({len(lut.table)} window-path '
          f'entries, warmup {lut_warmup}, iters {lut_iters}, {args.lut_rounds} rounds); direct: warmup '
          f'{args.warmup}, iters {args.iters}, IQM')
    print('| configuration | direct ms | ' + ' | '.join(f'{k} ms | {k} error' for k in luts) + ' |')
    print('|---|---|' + '---|---|' * len(luts))
    for row in rows:
        cells = ' | '.join(f"{row[k]['estimate_ms']:.2f} | {row[k]['error']:+.1%}" for k in luts)
        print(f"| {row['name']} | {row['direct_ms']:.2f} | {cells} |")
    summary = {k: max(abs(row[k]['error']) for row in rows) for k in luts}
    for k, worst in summary.items():
        print(f'# {k}: max |error| {worst:.1%} over {len(rows)} configurations '
              f'({"meets" if worst <= 0.05 else "misses"} the 5 % target)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    args=vars(args),
                    luts={
                        k: v.to_dict()
                        for k, v in luts.items()
                    },
                    lut_seconds=lut_s,
                    rows=rows,
                    max_abs_error=summary),
                f,
                indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Latency and MACs of SparseSwin vs mmdet's dense SwinTransformer, same weights, same process.

Example (the numbers of docs/benchmark.md)::

    python tools/analysis_tools/benchmark_backbone.py mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py \
        --threads 2 --repeat 20 --shape 672 672

CONFIG is any config whose ``model.backbone`` (or ``model``) is a Swin backbone (mmdet's or
``mmsparse.SparseSwin``); its pruning ratios are ignored, the ``--ratios`` sets are measured instead.
Every round times each model once, in turn, so load changes on a shared machine hit all rows alike.
Reported: MACs (spec §7, core and paper convention), MAC ratio vs dense, median / min / IQM latency,
speed-up vs dense mmdet Swin (median), and the ratio-0 check (max abs diff vs dense, must be 0).
"""
import argparse
import json
import statistics
import sys
import time

import torch

from mmsparse.sparsity.latency import interquartile_mean  # noqa: E402
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS as NAMED_RATIOS  # noqa: E402
from mmsparse.sparsity.ratios import named_or_json_ratios  # noqa: E402

SPARSE_ONLY_ARGS = ('pruning_ratios', 'score_mode', 'pad_mode', 'keep_rounding', 'min_keep',
                    'record_selection', 'force_window_path', 'fused_attention')


def add_backbone_args(p):
    """The arguments every Swin backbone benchmark takes: which backbone, input, device, kernels, seed."""
    p.add_argument('config', help='config file (or mmdet::... path) with a Swin backbone')
    p.add_argument('--shape', nargs=2, type=int, default=[672, 672], metavar=('H', 'W'))
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--unfused', action='store_true',
                   help='op-by-op window attention instead of the fused SDPA kernel')
    p.add_argument('--seed', type=int, default=0, help='random seed (weights, drawn configurations)')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_backbone_args(p)
    p.add_argument('--ratios', nargs='+', default=list(NAMED_RATIOS),
                   help=f'named sets {list(NAMED_RATIOS)} or JSON lists (default: all named)')
    p.add_argument('--repeat', type=int, default=20, help='timed rounds')
    p.add_argument('--warmup', type=int, default=3, help='untimed rounds')
    p.add_argument('--amp', action='store_true', help='autocast: bf16 on CPU, fp16 on CUDA')
    p.add_argument('--json', default=None, help='also write the rows to this JSON file')
    return p.parse_args(argv)


def load_backbone_cfg(path):
    from mmengine.config import Config
    if '::' in path:
        from mmengine.hub import get_config
        cfg = get_config(path)
    else:
        cfg = Config.fromfile(path)
    model = cfg.get('model', cfg)
    bb = dict(model.get('backbone', model))
    bb.pop('type')
    bb['init_cfg'] = None
    bb.pop('pretrained', None)
    bb.pop('convert_weights', None)
    bb['drop_path_rate'] = 0.
    return bb


def build_models(bb_cfg, seed, device):
    import mmsparse  # noqa: F401  (registers mmsparse.SparseSwin)
    from mmdet.models.backbones.swin import SwinTransformer
    from mmsparse.models.backbones import SparseSwin
    torch.manual_seed(seed)
    dense = SwinTransformer(**{k: v for k, v in bb_cfg.items() if k not in SPARSE_ONLY_ARGS})
    dense.init_weights()  # truncated-normal Linear weights, unit LN: no checkpoint needed
    sparse = SparseSwin(**bb_cfg)
    sparse.load_state_dict(dense.state_dict(), strict=True)
    dense.to(device).eval()  # mmdet's Swin.train() returns None: no chaining
    sparse.to(device).eval()
    return dense, sparse


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    from mmsparse.sparsity.cost import swin_macs
    from mmsparse.sparsity.ratios import validate_pruning_ratios
    bb_cfg = load_backbone_cfg(args.config)
    bb_cfg['fused_attention'] = not args.unfused
    dense, sparse = build_models(bb_cfg, args.seed, device)
    sets = []
    for item in args.ratios:
        sets.append((item, named_or_json_ratios(item)))
    for _, ratios in sets:
        sparse.set_pruning_ratios(ratios)  # validate every set before timing anything
    x = torch.randn(args.batch, 3, *args.shape, device=device)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16

    def run(model, ratios=None):
        if ratios is not None:
            model.set_pruning_ratios(ratios)
        with torch.inference_mode(), torch.autocast(device.type, amp_dtype, enabled=args.amp):
            out = model(x)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        return out

    # ratio 0 must reproduce dense mmdet Swin exactly (in the run's precision)
    ref = run(dense)
    zero = run(sparse, 0.0)  # a scalar ratio is valid for any depths
    max_diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(ref, zero))

    entries = [('dense mmdet Swin', None)] + sets
    times = {name: [] for name, _ in entries}
    for rnd in range(args.warmup + args.repeat):
        for name, ratios in entries:
            model = dense if ratios is None else sparse
            t0 = time.perf_counter()
            run(model, ratios)
            if rnd >= args.warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)

    c0 = bb_cfg.get('embed_dims', 96)
    depths = tuple(bb_cfg.get('depths', (2, 2, 6, 2)))
    ws = bb_cfg.get('window_size', 7)
    macs_kw = dict(batch=args.batch, embed_dims=c0, depths=depths, window_size=ws)
    dense_macs = swin_macs(tuple(args.shape), None, **macs_kw)
    dense_med = statistics.median(times['dense mmdet Swin'])
    rows = []
    for name, ratios in entries:
        block_ratios = None if ratios is None else [
            list(s) for s in validate_pruning_ratios(ratios, sparse.depths)]
        core = swin_macs(tuple(args.shape), block_ratios, **macs_kw)
        paper = swin_macs(tuple(args.shape), block_ratios, convention='paper', **macs_kw)
        med = statistics.median(times[name])
        rows.append(dict(name=name, gmacs_core=core / 1e9, gmacs_paper=paper / 1e9,
                         mac_ratio=dense_macs / core, median_ms=med, min_ms=min(times[name]),
                         iqm_ms=interquartile_mean(times[name]), speedup=dense_med / med))

    print(f'# Swin backbone benchmark: input {args.batch}x3x{args.shape[0]}x{args.shape[1]}, '
          f'device {args.device}, threads {torch.get_num_threads()}, '
          f'{"bf16/fp16 autocast" if args.amp else "fp32"}, '
          f'{"op-by-op" if args.unfused else "fused (SDPA)"} window attention, {args.repeat} timed rounds '
          f'(+{args.warmup} warm-up), torch {torch.__version__}')
    print(f'# ratio-0 SparseSwin vs dense mmdet Swin: max abs diff {max_diff:.3g}'
          f'{" (bit-identical)" if max_diff == 0 else ""}')
    print('| ratios | GMACs core | GMACs paper | MAC ratio | median ms | min ms | IQM ms | '
          'speed-up vs dense | speed-up >= MAC ratio |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        ok = 'yes' if r['speedup'] >= r['mac_ratio'] else 'no'
        print(f"| {r['name']} | {r['gmacs_core']:.3f} | {r['gmacs_paper']:.3f} | "
              f"{r['mac_ratio']:.2f}x | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['iqm_ms']:.1f} | "
              f"{r['speedup']:.2f}x | {ok} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), max_abs_diff_ratio0=max_diff, rows=rows), f, indent=1)
    if max_diff != 0:
        print('ERROR: ratio-0 output differs from dense mmdet Swin', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

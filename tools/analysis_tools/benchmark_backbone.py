"""Latency and MACs of SparseSwin vs mmdet's dense SwinTransformer, same weights, same process.

Example (the numbers of docs/benchmark.md)::

    python tools/analysis_tools/benchmark_backbone.py mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py \
        --threads 2 --repeat 20 --shape 672 672

CONFIG is any config whose ``model.backbone`` (or ``model``) is a Swin backbone (mmdet's or
``mmsparse.SparseSwin``); its pruning ratios are ignored, the ``--ratios`` sets are measured instead.
Every round times each model once, in turn, so load changes on a shared machine hit all rows alike.
Reported: MACs (docs/method/sparsevit.md, 4: core and paper convention), MAC ratio vs dense, median /
min / IQM latency, speed-up vs dense mmdet Swin (median), and the ratio-0 check (max abs diff vs dense,
must be 0).

``--compile`` adds rows of both models under ``torch.compile`` (inductor, ``fullgraph=True``, one
graph per ratio set), timed in the same rounds; ``--cuda-graph`` (CUDA only) adds rows replaying a
recorded CUDA graph of each model (``CUDAGraphForward``). Each added row is compared with its eager
twin (max abs diff) and reports its first call (compile or record, plus one forward) in seconds; its
speed-up is against the dense model of the same kind and, in its own column, against eager dense.
Compile times depend on inductor's on-disk cache: point ``TORCHINDUCTOR_CACHE_DIR`` at an empty
folder for a cold compile.

``--official FILE`` adds rows of the authors' SparseViT backbone (a local copy of
``mit-han-lab/sparsevit``'s ``mmdet/models/backbones/sparsevit.py``; mmsparse does not ship it) with the
same weights and ratios, eager, timed in the same rounds; each of our eager rows then also reports its
speed-up against the official row of the same ratios ("vs official"). The official code keeps
``int(nW * (1 - r))`` windows; SparseSwin runs with ``keep_rounding='reference_float'`` in that case so
both keep the same windows (the max abs diff per set is printed). See ``official_sparsevit.py``.
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

import torch

from mmsparse.models.backbones.sparse_swin import SPARSE_ONLY_ARGS  # noqa: E402
from mmsparse.sparsity.latency import interquartile_mean  # noqa: E402
from mmsparse.sparsity.machine import cpu_description  # noqa: E402
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS as NAMED_RATIOS  # noqa: E402
from mmsparse.sparsity.ratios import named_or_json_ratios  # noqa: E402


def add_backbone_args(p):
    """The arguments every Swin backbone benchmark takes: which backbone, input, device, kernels, seed."""
    p.add_argument('config', help='config file (or mmdet::... path) with a Swin backbone')
    p.add_argument('--shape', nargs=2, type=int, default=[672, 672], metavar=('H', 'W'))
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument(
        '--unfused', action='store_true', help='op-by-op window attention instead of the fused SDPA kernel')
    p.add_argument('--seed', type=int, default=0, help='random seed (weights, drawn configurations)')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_backbone_args(p)
    p.add_argument(
        '--ratios',
        nargs='+',
        default=list(NAMED_RATIOS),
        help=f'named sets {list(NAMED_RATIOS)} or JSON lists (default: all named)')
    p.add_argument('--repeat', type=int, default=20, help='timed rounds')
    p.add_argument('--warmup', type=int, default=3, help='untimed rounds')
    p.add_argument('--amp', action='store_true', help='autocast: bf16 on CPU, fp16 on CUDA')
    p.add_argument('--json', default=None, help='also write the rows to this JSON file')
    p.add_argument(
        '--pick-attention',
        action='store_true',
        help='time SDPA and op-by-op window attention on this machine first and keep the faster')
    p.add_argument(
        '--compile',
        action='store_true',
        help='also time both models under torch.compile (fullgraph, one graph per ratio set)')
    p.add_argument(
        '--compile-mode',
        default=None,
        choices=['default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'],
        help="torch.compile mode ('reduce-overhead': CUDA graphs of the compiled code)")
    p.add_argument(
        '--compile-backend',
        default='inductor',
        help="torch.compile backend (e.g. 'aot_eager' to check the graphs without inductor)")
    p.add_argument(
        '--official',
        default=None,
        metavar='FILE',
        help="also time the official SparseViT backbone from this local copy of its sparsevit.py")
    p.add_argument(
        '--cuda-graph',
        action='store_true',
        help='also time both models replayed as recorded CUDA graphs (needs --device cuda)')
    args = p.parse_args(argv)
    if args.cuda_graph and not args.device.startswith('cuda'):
        p.error('--cuda-graph needs --device cuda')
    if args.pick_attention and args.unfused:
        p.error('--pick-attention chooses the attention kernel itself: drop --unfused')
    if (args.compile_mode or args.compile_backend != 'inductor') and not args.compile:
        p.error('--compile-mode and --compile-backend need --compile')
    return args


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
    from mmdet.models.backbones.swin import SwinTransformer

    import mmsparse  # noqa: F401  (registers mmsparse.SparseSwin)
    from mmsparse.models.backbones import SparseSwin
    torch.manual_seed(seed)
    dense = SwinTransformer(**{k: v for k, v in bb_cfg.items() if k not in SPARSE_ONLY_ARGS})
    dense.init_weights()  # truncated-normal Linear weights, unit LN: no checkpoint needed
    sparse = SparseSwin(**bb_cfg)
    sparse.load_state_dict(dense.state_dict(), strict=True)
    dense.to(device).eval()  # mmdet's Swin.train() returns None: no chaining
    sparse.to(device).eval()
    return dense, sparse


def sparse_block_ratios(sparse, ratios):
    """Per-stage per-block ratios of a ``--ratios`` entry (``None``: dense) for ``sparse``'s depths."""
    from mmsparse.sparsity.ratios import validate_pruning_ratios
    return [list(s) for s in validate_pruning_ratios(0.0 if ratios is None else ratios, sparse.depths)]


def build_variants(args, dense, sparse, num_sets):
    """``[(kind, dense_callable, sparse_callable)]``: eager first, then the requested compiled kinds."""
    variants = [('eager', dense, sparse)]
    if args.compile:
        config = torch._dynamo.config
        name = 'recompile_limit' if hasattr(config, 'recompile_limit') else 'cache_size_limit'
        # one compiled variant of SparseSwin per ratio set (and the ratio-0 check): keep them all
        setattr(config, name, max(getattr(config, name), num_sets + 2))
        kw = dict(fullgraph=True, dynamic=False, mode=args.compile_mode, backend=args.compile_backend)
        variants.append(('compiled', torch.compile(dense, **kw), torch.compile(sparse, **kw)))
    if args.cuda_graph:
        from mmsparse.models.backbones.cuda_graph_backbone import CUDAGraphForward
        variants.append(('CUDA graph', CUDAGraphForward(dense), CUDAGraphForward(sparse)))
    return variants


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bb_cfg = load_backbone_cfg(args.config)
    bb_cfg['fused_attention'] = not args.unfused
    if args.official:
        bb_cfg['keep_rounding'] = 'reference_float'  # the official code's window count
    dense, sparse = build_models(bb_cfg, args.seed, device)
    official = None
    if args.official:
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # official_sparsevit.py, next to this file
        from official_sparsevit import build_official
        official = build_official(args.official, sparse)
    sets = []
    for item in args.ratios:
        sets.append((item, named_or_json_ratios(item)))
    for _, ratios in sets:
        sparse.set_pruning_ratios(ratios)  # validate every set before timing anything
    if args.pick_attention:
        from mmsparse.models.backbones.swin_block_timer import choose_window_attention
        with sparse.temporary_pruning_ratios(0.5):
            picked = choose_window_attention(sparse, args.shape, args.batch, device)
        print(
            f"# window attention measured once: SDPA {picked['fused_ms']:.1f} ms, op-by-op "
            f"{picked['unfused_ms']:.1f} ms (per stage one block of each parity at r=0.5 and one "
            'unpruned block): '
            f"{'SDPA' if picked['fused_attention'] else 'op-by-op'} kept",
            flush=True)
    x = torch.randn(args.batch, 3, *args.shape, device=device)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16

    def run(model, ratios=None):
        if ratios is not None:
            sparse.set_pruning_ratios(ratios)  # the compiled/graphed wrappers read the module's ratios
        # CUDA graphs must not record autocast's weight-cast cache (it would be freed after capture)
        with torch.inference_mode(), torch.autocast(
                device.type, amp_dtype, enabled=args.amp, cache_enabled=not args.cuda_graph):
            out = model(x)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        return out

    def diff(a, b):
        return max((p.float() - q.float()).abs().max().item() for p, q in zip(a, b))

    # ratio 0 must reproduce dense mmdet Swin exactly (in the run's precision)
    ref = run(dense)
    zero = run(sparse, 0.0)  # a scalar ratio is valid for any depths
    max_diff = diff(ref, zero)

    entries = [('dense mmdet Swin', None)] + sets
    variants = build_variants(args, dense, sparse, len(sets))
    eager_out = {name: run(dense if ratios is None else sparse, ratios) for name, ratios in entries}
    first_call, vs_eager = {}, {}
    for kind, dense_fn, sparse_fn in variants[1:]:
        for name, ratios in entries:
            t0 = time.perf_counter()
            out = run(dense_fn if ratios is None else sparse_fn, ratios)
            first_call[kind, name] = time.perf_counter() - t0
            vs_eager[kind, name] = diff(out, eager_out[name])
            print(
                f'# {kind} {name}: first call {first_call[kind, name]:.1f} s, '
                f'max abs diff vs eager {vs_eager[kind, name]:.3g}',
                flush=True)

    timed = [(kind, dense_fn, sparse_fn, False) for kind, dense_fn, sparse_fn in variants]
    if official is not None:
        from official_sparsevit import set_official_ratios
        timed.insert(1, ('official', official, official, True))
        for name, ratios in entries:
            ours_out = eager_out[name]
            set_official_ratios(official, sparse_block_ratios(sparse, ratios))
            print(
                f'# official SparseViT {name}: max abs diff vs ours {diff(run(official), ours_out):.3g}',
                flush=True)
    times = {(kind, name): [] for kind, *_ in timed for name, _ in entries}
    for rnd in range(args.warmup + args.repeat):
        for kind, dense_fn, sparse_fn, is_official in timed:
            for name, ratios in entries:
                fn = dense_fn if ratios is None else sparse_fn
                if is_official:
                    set_official_ratios(official, sparse_block_ratios(sparse, ratios))
                    ratios = None  # our model is not run in this row
                t0 = time.perf_counter()
                run(fn, ratios)
                if rnd >= args.warmup:
                    times[kind, name].append((time.perf_counter() - t0) * 1e3)

    # the backbone's own cost model (its architecture, keep_rounding and min_keep)
    dense_macs = sparse.macs(tuple(args.shape), 0.0, batch=args.batch)
    eager_dense_med = statistics.median(times['eager', 'dense mmdet Swin'])
    rows = []
    for kind, *_ in timed:
        dense_med = statistics.median(times['eager' if kind == 'official' else kind, 'dense mmdet Swin'])
        for name, ratios in entries:
            block_ratios = sparse_block_ratios(sparse, ratios)
            core = sparse.macs(tuple(args.shape), block_ratios, batch=args.batch)
            paper = sparse.macs(tuple(args.shape), block_ratios, batch=args.batch, convention='paper')
            t = times[kind, name]
            med = statistics.median(t)
            rows.append(
                dict(
                    kind=kind,
                    name=name,
                    gmacs_core=core / 1e9,
                    gmacs_paper=paper / 1e9,
                    mac_ratio=dense_macs / core,
                    median_ms=med,
                    min_ms=min(t),
                    iqm_ms=interquartile_mean(t),
                    speedup=dense_med / med,
                    speedup_vs_eager_dense=eager_dense_med / med,
                    speedup_vs_official=(statistics.median(times['official', name]) /
                                         med if kind == 'eager' and official is not None else None),
                    first_call_s=first_call.get((kind, name)),
                    max_abs_diff_vs_eager=vs_eager.get((kind, name))))

    kinds = ', '.join(kind for kind, *_ in timed)
    print(f'# Swin backbone benchmark: input {args.batch}x3x{args.shape[0]}x{args.shape[1]}, '
          f'device {args.device}, threads {torch.get_num_threads()}, '
          f'{"bf16/fp16 autocast" if args.amp else "fp32"}, '
          f'{"fused (SDPA)" if sparse.window_options.fused_attention else "op-by-op"} window attention, '
          f'{args.repeat} timed rounds (+{args.warmup} warm-up), torch {torch.__version__}, {kinds}'
          f'{" (mode " + args.compile_mode + ")" if args.compile_mode else ""}')
    print(f'# CPU: {cpu_description()}' +
          (f'; GPU: {torch.cuda.get_device_name(device)}' if device.type == 'cuda' else ''))
    print(f'# ratio-0 SparseSwin vs dense mmdet Swin: max abs diff {max_diff:.3g}'
          f'{" (bit-identical)" if max_diff == 0 else ""}')
    extra = len(variants) > 1
    print('| ratios | GMACs core | GMACs paper | MAC ratio | median ms | min ms | IQM ms | '
          'speed-up vs dense | speed-up >= MAC ratio |' + (' vs official |' if official is not None else '') +
          (' speed-up vs eager dense | first call s | max abs diff vs eager |' if extra else ''))
    print('|---|---|---|---|---|---|---|---|---|' + ('---|' if official is not None else '') +
          ('---|---|---|' if extra else ''))
    for r in rows:
        ok = 'yes' if r['speedup'] >= r['mac_ratio'] else 'no'
        label = r['name'] if r['kind'] == 'eager' else f"{r['name']} ({r['kind']})"
        if r['kind'] == 'official':
            label = f"official SparseViT, {'ratio 0' if r['name'] == 'dense mmdet Swin' else r['name']}"
        line = (f"| {label} | {r['gmacs_core']:.3f} | {r['gmacs_paper']:.3f} | "
                f"{r['mac_ratio']:.2f}x | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['iqm_ms']:.1f} | "
                f"{r['speedup']:.2f}x | {ok} |")
        if official is not None:
            line += '' if r['speedup_vs_official'] is None else f" {r['speedup_vs_official']:.2f}x"
            line += ' |'
        if extra:
            first = '' if r['first_call_s'] is None else f"{r['first_call_s']:.1f}"
            d = '' if r['max_abs_diff_vs_eager'] is None else f"{r['max_abs_diff_vs_eager']:.2g}"
            line += f" {r['speedup_vs_eager_dense']:.2f}x | {first} | {d} |"
        print(line)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(args=vars(args), cpu=cpu_description(), max_abs_diff_ratio0=max_diff, rows=rows),
                f,
                indent=1)
    if max_diff != 0:
        print('ERROR: ratio-0 output differs from dense mmdet Swin', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

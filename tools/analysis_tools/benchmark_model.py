"""Whole-model latency: the task's full ``test_step`` with dense Swin vs SparseSwin, same weights, one run.

Example (the tables of docs/benchmark.md)::

    python tools/analysis_tools/benchmark_model.py configs/sparsevit/maskrcnn_swin_t.py \
        --ratios cfg2 uniform-0.5 --shape 672 672 --threads 2 --repeat 5

CONFIG is a classifier, segmentor, Mask R-CNN or PGD config with a ``mmsparse.SparseSwin`` backbone;
CHECKPOINT (optional) its weights, otherwise the modules' random initialisation (latency does not
depend on the weights except through the number of boxes that survive NMS). ``--shape`` is the image
size the test pipeline delivers (before the data preprocessor pads it). The dense baseline is the same
model with the task package's own Swin backbone (mmseg's for the segmentor, mmdet's for the others:
mmdet3d has none and SparseSwin extends mmdet's) loaded with the same weights.

Every round times, for each row in turn, the whole ``test_step`` (data preprocessor, backbone, neck,
heads, post-processing) and then the backbone alone on the preprocessed batch, so load changes on a
shared machine hit all rows alike. ``--backend``: ``eager``, ``compile`` (``torch.compile`` on the
backbone) and/or ``onnxruntime`` (the backbone exported at the row's ratios and run by onnxruntime on
the CPU, the rest in PyTorch); several backends are timed in the same rounds. Printed per row: backbone
MACs from our analytic model and from ``torch.utils.flop_counter.FlopCounterMode`` on the executed
modules, whole-model MACs (FlopCounterMode), median latencies, the backbone's share of the whole time,
the backbone and whole-model speed-ups against the dense row of the same backend, and the Amdahl
bound ``1 / ((1 - p) + p / s)`` from the dense backbone share ``p`` and the measured backbone speed-up
``s``.
"""
import argparse
import contextlib
import copy
import json
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

from mmsparse.models.backbones.sparse_swin import SPARSE_ONLY_ARGS
from mmsparse.sparsity.flop_count import count_macs
from mmsparse.sparsity.machine import cpu_description

BACKENDS = ('eager', 'compile', 'onnxruntime')


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None)
    p.add_argument('--ratios', nargs='+', default=['cfg2'], help='named sets or JSON lists (default: cfg2)')
    p.add_argument(
        '--shape',
        nargs=2,
        type=int,
        required=True,
        metavar=('H', 'W'),
        help='image size delivered by the test pipeline, in pixels')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', action='store_true', help='autocast: bf16 on CPU, fp16 on CUDA')
    p.add_argument('--backend', nargs='+', choices=BACKENDS, default=['eager'])
    p.add_argument('--threads', type=int, default=None, help='torch (and onnxruntime) CPU threads')
    p.add_argument('--repeat', type=int, default=5, help='timed rounds')
    p.add_argument('--warmup', type=int, default=2, help='untimed rounds')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-flops', action='store_true', help='skip the FlopCounterMode cross-check')
    p.add_argument('--json', default=None, help='also write the rows to this JSON file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
    return p.parse_args(argv)


def dense_backbone(cfg, task, sparse_backbone):
    """The task package's own Swin with ``sparse_backbone``'s weights, returning a tuple of maps."""
    if task == 'seg':
        from mmseg.models.backbones import SwinTransformer
    else:
        from mmdet.models.backbones import SwinTransformer

    class TupleSwin(SwinTransformer):
        """The package's Swin; a tuple out, as mmpretrain's neck needs (the others take either)."""

        def forward(self, x):
            return tuple(super().forward(x))

    import inspect
    accepted = inspect.signature(SwinTransformer.__init__).parameters
    # mmseg's Swin has no convert_weights (a pretrained-loading switch); no weights are loaded here
    kwargs = {
        k: v
        for k, v in cfg.model.backbone.items()
        if k not in SPARSE_ONLY_ARGS + ('type', 'pretrained', 'convert_weights') and k in accepted
    }
    kwargs['init_cfg'] = None
    dense = TupleSwin(**kwargs)
    state = {k: v for k, v in sparse_backbone.state_dict().items() if not k.endswith('pruning_ratios')}
    dense.load_state_dict(state, strict=True)
    dense.to(next(sparse_backbone.parameters()).device)
    dense.eval()  # mmdet's Swin.train() returns None: no chaining
    return dense


class OrtBackbone(torch.nn.Module):
    """An exported backbone run by onnxruntime: ``(B, 3, H, W)`` -> tuple of maps as torch tensors."""

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def forward(self, x):
        outs = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})
        return tuple(torch.from_numpy(o).to(x.device) for o in outs)


def preprocessed_images(model, data):
    """The backbone input the model's data preprocessor makes of ``data``."""
    out = model.data_preprocessor(copy.copy(data), False)['inputs']
    return out['imgs'] if isinstance(out, dict) else out


def build_rows(args):
    """Model, data and one entry per (backend, ratios) row; the dense row of each backend first."""
    from mmsparse.deployment import build_model, task_of
    from mmsparse.deployment.synthetic_batch import synthetic_batch
    from mmsparse.sparsity.ratios import named_or_json_ratios
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    cfg, model = build_model(args.config, args.checkpoint, args.cfg_options, device)
    task = task_of(model)
    sparse = model.backbone
    if not hasattr(sparse, 'set_pruning_ratios'):
        raise ValueError(f'model.backbone must be mmsparse.SparseSwin, got {type(sparse).__name__}')
    dense = dense_backbone(cfg, task, sparse)
    sets = [(name, sparse.set_pruning_ratios(named_or_json_ratios(name)) or sparse.get_pruning_ratios())
            for name in args.ratios]
    data = synthetic_batch(task, args.shape, args.batch, args.seed)
    data = dict(data, inputs=_to_device(data['inputs'], device))
    images = preprocessed_images(model, data)
    rows = []
    for backend in args.backend:
        rows.append(
            dict(
                backend=backend,
                name='dense (package Swin)',
                ratios=None,
                backbone=_backend_module(backend, dense, images, None, args)))
        for name, ratios in sets:
            rows.append(
                dict(
                    backend=backend,
                    name=name,
                    ratios=ratios,
                    backbone=_backend_module(backend, sparse, images, ratios, args)))
    return cfg, task, model, sparse, dense, data, images, rows


def _to_device(inputs, device):
    if isinstance(inputs, dict):
        return {k: _to_device(v, device) for k, v in inputs.items()}
    return [t.to(device) for t in inputs]


def _backend_module(backend, backbone, images, ratios, args):
    """The backbone as the backend runs it (for ``onnxruntime``: exported now at ``ratios``)."""
    if backend == 'eager':
        return backbone
    if backend == 'compile':
        return torch.compile(backbone)
    from mmsparse.deployment import export_onnx, ort_session
    from mmsparse.deployment.parts import BackbonePart
    if ratios is not None:
        backbone.set_pruning_ratios(ratios)
    path = osp.join(tempfile.mkdtemp(prefix='mmsparse_ort_'), 'backbone.onnx')
    t0 = time.perf_counter()
    export_onnx(BackbonePart(backbone), images.float(), path, dict(pruning_ratios=ratios))
    print(
        f'# exported {"dense" if ratios is None else "sparse"} backbone to onnx in '
        f'{time.perf_counter() - t0:.0f} s',
        file=sys.stderr,
        flush=True)
    return OrtBackbone(ort_session(path, args.threads or torch.get_num_threads(), spinning=False))


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, task, model, sparse, dense, data, images, rows = build_rows(args)
    device = torch.device(args.device)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16

    def use(row):
        model.backbone = row['backbone']
        if row['ratios'] is not None:
            sparse.set_pruning_ratios(row['ratios'])

    def context():
        return contextlib.ExitStack() if not args.amp else torch.autocast(device.type, amp_dtype)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    def whole():
        with torch.no_grad(), context():
            out = model.test_step(data)
        sync()
        return out

    def backbone_only():
        with torch.no_grad(), context():
            out = model.backbone(images)
        sync()
        return out

    # MACs: analytic (ours) and FlopCounterMode on the eager modules, per distinct ratio set
    hw = tuple(images.shape[-2:])
    for row in rows:
        # the backbone's own cost model (core convention); dense: ratio 0
        ratios = 0.0 if row['ratios'] is None else row['ratios']
        row['backbone_gmacs_analytic'] = sparse.macs(hw, ratios, batch=images.shape[0]) / 1e9
        if not args.no_flops:
            eager = dense if row['ratios'] is None else sparse
            use(dict(row, backbone=eager))
            row['backbone_gmacs_counted'] = count_macs(backbone_only) / 1e9
            row['whole_gmacs_counted'] = count_macs(whole) / 1e9
    times = {i: dict(whole=[], backbone=[]) for i in range(len(rows))}
    for rnd in range(args.warmup + args.repeat):
        for i, row in enumerate(rows):
            use(row)
            for kind, fn in (('whole', whole), ('backbone', backbone_only)):
                t0 = time.perf_counter()
                fn()
                if rnd >= args.warmup:
                    times[i][kind].append((time.perf_counter() - t0) * 1e3)
    model.backbone = sparse
    dense_of = {}
    for i, row in enumerate(rows):
        row['whole_ms'] = statistics.median(times[i]['whole'])
        row['backbone_ms'] = statistics.median(times[i]['backbone'])
        row['backbone_share'] = row['backbone_ms'] / row['whole_ms']
        if row['ratios'] is None:
            dense_of[row['backend']] = row
        ref = dense_of[row['backend']]
        s = ref['backbone_ms'] / row['backbone_ms']
        p = min(ref['backbone_share'], 1.0)
        row['backbone_speedup'] = s
        row['whole_speedup'] = ref['whole_ms'] / row['whole_ms']
        row['amdahl_bound'] = 1.0 / ((1.0 - p) + p / s)
        row.pop('backbone')
    print_table(args, cfg, task, images, rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), cpu=cpu_description(), rows=rows), f, indent=1)
    return 0


def print_table(args, cfg, task, images, rows):
    shape = 'x'.join(map(str, images.shape))
    print(f'# whole-model benchmark: {osp.basename(args.config)} ({task}), images {args.batch}x3x'
          f'{args.shape[0]}x{args.shape[1]} -> backbone input {shape}, device {args.device}, threads '
          f'{torch.get_num_threads()}, {"bf16/fp16 autocast" if args.amp else "fp32"}, {args.repeat} timed '
          f'rounds (+{args.warmup} warm-up), medians, torch {torch.__version__}')
    print(f'# CPU: {cpu_description()}')
    counted = not args.no_flops
    head = ['backend', 'ratios', 'backbone GMACs (analytic)']
    if counted:
        head += ['backbone GMACs (FlopCounter)', 'whole GMACs (FlopCounter)']
    head += [
        'backbone ms', 'whole ms', 'backbone share', 'backbone speed-up', 'whole speed-up', 'Amdahl bound'
    ]
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '---|' * len(head))
    for r in rows:
        cells = [r['backend'], r['name'], f"{r['backbone_gmacs_analytic']:.2f}"]
        if counted:
            cells += [f"{r['backbone_gmacs_counted']:.2f}", f"{r['whole_gmacs_counted']:.2f}"]
        cells += [
            f"{r['backbone_ms']:.1f}", f"{r['whole_ms']:.1f}", f"{100 * r['backbone_share']:.0f}%",
            f"{r['backbone_speedup']:.2f}x", f"{r['whole_speedup']:.2f}x", f"{r['amdahl_bound']:.2f}x"
        ]
        print('| ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from run_common import run_main  # noqa: E402
    sys.exit(run_main(main))

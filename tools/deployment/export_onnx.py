"""Export a (searched, fine-tuned) sparse model to ONNX at fixed ratios and check it with onnxruntime.

Usage::

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --ratios cfg2 --shape 512 512 \
        --out upernet_cfg2.onnx [--part model] [--batch 1] [--opset 18]

CHECKPOINT may be ``none`` (random weights: to try the export or time the graph). ``--ratios`` (a name
such as ``cfg2`` / ``uniform-0.5`` or a JSON list) overrides the SparseSwin ratios of the config; a
SparseDeiT keeps the sparsity of its config (compact heads/neurons, token selector keep count).
``--part``: ``model`` (classifier, segmentor; the default for them), ``features`` (backbone + neck;
the default for Mask R-CNN and PGD, whose NMS / RoIAlign post-processing is not exported) or
``backbone``. The input is the preprocessed batch (see docs/deployment.md). The file records the
ratios, input shape, part, config and normalisation in its metadata; the tool then runs it with
onnxruntime on a random batch and prints the largest difference from PyTorch eager.
"""
import argparse
import os
import os.path as osp
import sys
import time


def parse_args(argv=None):
    from mmsparse.deployment import PARTS
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', help="checkpoint file, or 'none' for random weights")
    p.add_argument('--ratios', default=None, help='named ratio set or JSON (default: the config\'s)')
    p.add_argument(
        '--shape',
        nargs=2,
        type=int,
        required=True,
        metavar=('H', 'W'),
        help='input height and width in pixels, after preprocessing (padding included)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--out', required=True, help='output .onnx file')
    p.add_argument(
        '--part',
        choices=PARTS,
        default=None,
        help='model (classifier/segmentor) | features (backbone+neck) | backbone')
    p.add_argument('--opset', type=int, default=18)
    p.add_argument('--no-verify', action='store_true', help='skip the onnxruntime-vs-eager check')
    p.add_argument(
        '--atol',
        type=float,
        default=1e-3,
        help='fail when onnxruntime and eager differ by more than this (default 1e-3)')
    from mmengine.config import DictAction
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default=None,
        help='override config entries, key=value (as in tools/test.py)')
    return p.parse_args(argv)


def export(config,
           checkpoint,
           ratios,
           shape,
           out,
           batch=1,
           part=None,
           opset=18,
           verify=True,
           optimize=True,
           seed=0,
           cfg_options=None,
           threads=None):
    """Build, set ratios, export, verify. Returns ``(metadata, max_abs_diff or None)``."""
    import torch

    from mmsparse.deployment import (apply_ratios, build_model, default_part, export_onnx, export_part,
                                     run_onnxruntime)
    from mmsparse.sparsity.ratios import named_or_json_ratios
    from mmsparse.utils import check_checkpoint_file

    if batch < 1:
        raise ValueError(f'--batch must be >= 1, got {batch}')
    if min(shape) < 1:
        raise ValueError(f'--shape must be two positive sizes, got {shape}')
    ckpt = None if checkpoint in (None, 'none') else checkpoint
    if ckpt is not None:
        check_checkpoint_file(ckpt)
    cfg, model = build_model(config, ckpt, cfg_options)
    value = None if ratios is None else named_or_json_ratios(ratios) if isinstance(ratios, str) else ratios
    effective = apply_ratios(model.backbone, value)
    part = part or default_part(model)
    module = export_part(model, part)
    metadata = dict(
        part=part,
        model=type(model).__name__,
        backbone=type(model.backbone).__name__,
        config=osp.basename(str(getattr(cfg, 'filename', config) or config)),
        checkpoint=osp.basename(ckpt) if ckpt else 'none')
    if effective is not None:
        metadata['pruning_ratios'] = effective
        if ratios is not None and isinstance(ratios, str):
            metadata['ratios_name'] = ratios
    selector = getattr(model.backbone, 'token_selector', None)
    if selector is not None:
        metadata['token_keep'] = dict(num_tokens=selector.num_tokens, keep_ratio=selector.keep_ratio)
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    if pre:
        metadata['preprocess'] = {k: pre[k] for k in ('mean', 'std', 'bgr_to_rgb', 'to_rgb') if k in pre}
    x = torch.randn(batch, 3, *shape, generator=torch.Generator().manual_seed(seed))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    export_onnx(module, x, out, metadata, opset=opset, optimize=optimize)
    diff = None
    if verify:
        with torch.no_grad():
            ref = module(x)
        ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
        got = run_onnxruntime(out, x, threads)
        diff = max(float((r - torch.from_numpy(g)).abs().max()) for r, g in zip(ref, got))
    return metadata, diff


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    meta, diff = export(
        args.config,
        args.checkpoint,
        args.ratios,
        tuple(args.shape),
        args.out,
        args.batch,
        args.part,
        args.opset,
        not args.no_verify,
        cfg_options=args.cfg_options)
    size = osp.getsize(args.out) / 2**20
    print(f'wrote {args.out} ({size:.1f} MiB, part {meta["part"]}, input {args.batch}x3x{args.shape[0]}x'
          f'{args.shape[1]}) in {time.perf_counter() - t0:.1f} s')
    if 'pruning_ratios' in meta:
        print(f'pruning ratios: {meta["pruning_ratios"]}')
    if diff is not None:
        print(f'onnxruntime vs PyTorch eager: max abs diff {diff:.3g}')
        if diff > args.atol:
            print(f'ERROR: difference above --atol {args.atol}', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from run_common import run_main  # noqa: E402
    sys.exit(run_main(main))

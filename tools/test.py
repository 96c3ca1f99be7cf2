# Copyright (c) mmsparse contributors. Test any mmsparse/OpenMMLab task config.
"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out] [--show-dir] ...``.

The metric is the config's own ``test_evaluator`` (COCO AP, mIoU, top-1/top-5, KITTI AP).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from run_common import set_env_defaults  # noqa: E402

set_env_defaults()

from mmengine.config import DictAction  # noqa: E402
from run_common import build_runner, load_config, run_main  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file (mmdet: the DumpDetResults format, usable by '
        'pycocotools after conversion; others: mmengine DumpResults)')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--tta', action='store_true', help='test time augmentation (config tta_model)')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile the backbone (a window-pruned one as one graph per ratio set); one compile '
        'per input shape, so it pays for fixed-size inputs (classification, slide-mode segmentation)')
    parser.add_argument(
        '--compile-mode',
        default=None,
        choices=['default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'],
        help='torch.compile mode for --compile')
    parser.add_argument('--compile-backend', default='inductor', help='torch.compile backend for --compile')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Switch the task's visualization hook on (mmdet/mmdet3d/mmseg: ``draw``; mmpretrain: ``enable``)."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError('--show/--show-dir need a "visualization" entry in default_hooks '
                           '(DetVisualizationHook, SegVisualizationHook or VisualizationHook).')
    hook = hooks['visualization']
    scope = cfg.get('default_scope', 'mmengine')
    if scope == 'mmpretrain':
        hook['enable'] = True
        hook['interval'] = 1  # mmpretrain paints every `interval`-th sample; a user asking wants all
        if args.show_dir:
            hook['out_dir'] = args.show_dir
    else:
        hook['draw'] = True
        if args.show_dir:
            if scope == 'mmseg':
                cfg.visualizer['save_dir'] = args.show_dir
            else:
                hook['test_out_dir'] = args.show_dir
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time


def add_dump_metric(cfg, out):
    """Append the task's prediction dumper to the test evaluator (as mmdet's ``--out``)."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out: the output file must be a pkl file, got {out}')
    scope = cfg.get('default_scope', 'mmengine')
    dump = (
        dict(type='mmdet.DumpDetResults', out_file_path=out) if scope == 'mmdet' else dict(
            type='mmengine.DumpResults', out_file_path=out))
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, (list, tuple)):
        cfg.test_evaluator = list(evaluator) + [dump]
    elif 'metrics' in evaluator:
        evaluator['metrics'] = list(evaluator['metrics']) + [dump]
    else:
        cfg.test_evaluator = [evaluator, dump]


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise RuntimeError('--tta needs "tta_model" and "tta_pipeline" in the config')
        cfg.model = dict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if args.out is not None:
        add_dump_metric(cfg, args.out)
    runner = build_runner(cfg, loaders=('test_dataloader', ))
    if args.compile:
        from mmsparse.engine.compile_backbone import compile_backbones
        names = compile_backbones(
            runner.model,
            'tools/test.py --compile',
            backend=args.compile_backend,
            mode=args.compile_mode,
            recompile_limit=16)
        runner.logger.info(f'--compile: compiled {", ".join(names)} ({args.compile_backend}'
                           f'{", mode " + args.compile_mode if args.compile_mode else ""})')
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    run_main(main)

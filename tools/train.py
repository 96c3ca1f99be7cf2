# Copyright (c) mmsparse contributors. Train any mmsparse/OpenMMLab task config.
"""Train a model: ``python tools/train.py CONFIG [--work-dir] [--resume [CKPT]] [--amp] ...``.

One tool for all four tasks: the config's ``default_scope`` (mmdet, mmseg, mmpretrain, mmdet3d)
picks the task package; mmsparse modules are named ``mmsparse.X`` inside those configs.
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
    parser = argparse.ArgumentParser(description='Train a detector / segmentor / classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision (fp16 on CUDA, bf16 autocast on CPU)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='if a checkpoint is given, resume from it; without a value, resume from the latest '
        'checkpoint in the work_dir.')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, key=value pairs, e.g. '
        'train_cfg.max_iters=10 "model.backbone.pruning_ratios=[[0.5,0.5],[0,0],[0]*6,[0,0]]"')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun uses LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if 'search_loop' in cfg:
        # a search config inherits its task's training recipe: training it would silently train from
        # scratch instead of searching
        raise ValueError(f'{args.config} is a search config (it has search_loop): run '
                         f'`python tools/search.py {args.config} SAA_CHECKPOINT` instead of tools/train.py')
    if args.amp:
        _enable_amp(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('Can not find "auto_scale_lr" or "auto_scale_lr.base_batch_size" in '
                               'your configuration file.')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    runner = build_runner(cfg, resume_auto=args.resume == 'auto')
    runner.train()


def _enable_amp(cfg):
    """``--amp``: fp16 loss scaling on CUDA; bf16 autocast on CPU (no loss scaling needed).

    Each fp32 wrapper maps to its mixed-precision twin: ``OptimWrapper`` -> ``AmpOptimWrapper`` /
    ``mmsparse.CPUAmpOptimWrapper``; ``mmsparse.SViTEOptimWrapper`` -> ``mmsparse.AmpSViTEOptimWrapper``
    / ``mmsparse.CPUAmpSViTEOptimWrapper``.
    """
    import torch
    from mmengine.logging import print_log
    twins = {  # fp32 wrapper -> (CUDA wrapper, CPU wrapper)
        'OptimWrapper': ('AmpOptimWrapper', 'mmsparse.CPUAmpOptimWrapper'),
        'mmsparse.SViTEOptimWrapper': ('mmsparse.AmpSViTEOptimWrapper',
                                       'mmsparse.CPUAmpSViTEOptimWrapper'),
    }
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if any(optim_wrapper in pair for pair in twins.values()):
        print_log('AMP training is already enabled in your config.', logger='current')
        return
    if optim_wrapper not in twins:
        raise ValueError(f'--amp: optim_wrapper.type must be one of {sorted(twins)}, got "{optim_wrapper}"')
    cuda_type, cpu_type = twins[optim_wrapper]
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = cuda_type
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        print_log(f'--amp on CPU: using bf16 autocast ({cpu_type})', logger='current')
        cfg.optim_wrapper.type = cpu_type


if __name__ == '__main__':
    run_main(main)

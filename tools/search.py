# Copyright (c) mmsparse contributors. Search per-layer window-pruning ratios (SparseViT paper, Sec. 3.3).
"""``python tools/search.py CONFIG CHECKPOINT --work-dir W [--constraint macs|latency] [--budget X] ...``.

Runs ``mmsparse.EvolutionSearchLoop`` as the ``train_cfg`` of the task config, on the task's own val
dataloader and evaluator, with the sparsity-aware-adapted CHECKPOINT as ``load_from``. Loop settings
come from the config's optional ``search_loop=dict(...)``; the options below override them.
Outputs in the work dir: ``best_ratios.json``, ``search_history.jsonl``, ``pareto.png``,
``finetune_<name>.py`` and the resumable ``search_state.json``.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from run_common import set_env_defaults  # noqa: E402

set_env_defaults()  # before mmdet3d imports numba: KittiMetric scores candidates on CPU too

from mmengine.config import DictAction  # noqa: E402
from run_common import build_runner, load_config, run_main  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evolutionary search of SparseViT pruning ratios')
    parser.add_argument('config', help='task config (with a SparseSwin backbone)')
    parser.add_argument('checkpoint', help='sparsity-aware adapted checkpoint')
    parser.add_argument('--work-dir', help='where the search writes (default work_dirs/<stem>_search)')
    parser.add_argument('--constraint', choices=['macs', 'latency'], help='what the budget bounds')
    parser.add_argument('--budget', type=float, help='upper bound: G MACs or ms')
    parser.add_argument('--min', type=float, dest='budget_min', help='lower bound: G MACs or ms')
    parser.add_argument(
        '--direct-latency',
        action='store_true',
        help='time every candidate instead of using the latency look-up table')
    parser.add_argument(
        '--resume', action='store_true', help='continue from <work-dir>/search_state.json if it exists')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. search_loop.population=50')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def search_cfg(cfg, args):
    """Turn the task config into a search run (modifies ``cfg`` in place and returns it)."""
    loop = dict(cfg.get('search_loop') or {})
    loop.setdefault('type', 'mmsparse.EvolutionSearchLoop')
    if 'val_dataloader' not in cfg or 'val_evaluator' not in cfg:
        raise ValueError(f'{args.config} needs val_dataloader and val_evaluator: the search scores '
                         'candidates with them')
    loop.setdefault('dataloader', cfg.val_dataloader)
    loop.setdefault('evaluator', cfg.val_evaluator)
    constraint = dict(loop.get('constraint') or dict(kind='macs'))
    if args.constraint is not None:
        constraint['kind'] = args.constraint
    if args.budget is not None:
        constraint['max'] = args.budget
    if args.budget_min is not None:
        constraint['min'] = args.budget_min
    if args.direct_latency:
        constraint['direct'] = True
    if constraint.get('max') is None and constraint.get('min') is None:
        raise ValueError('set a budget: --budget (or search_loop.constraint.max in the config)')
    loop['constraint'] = constraint
    loop['resume'] = bool(args.resume)
    loop.setdefault('base_config', osp.abspath(args.config))
    cfg.train_cfg = loop
    cfg.load_from = args.checkpoint
    cfg.resume = False  # the loop resumes from its own state file, not from a training checkpoint
    cfg.param_scheduler = None  # nothing is trained
    # mmengine wants train_dataloader / optim_wrapper next to train_cfg; neither is used
    if cfg.get('train_dataloader') is None:
        cfg.train_dataloader = cfg.val_dataloader
    if cfg.get('optim_wrapper') is None:
        cfg.optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.0))
    return cfg


def main(argv=None):
    args = parse_args(argv)
    work_dir = args.work_dir or osp.join('./work_dirs',
                                         osp.splitext(osp.basename(args.config))[0] + '_search')
    cfg = load_config(args.config, args.cfg_options, args.launcher, work_dir)
    runner = build_runner(search_cfg(cfg, args))
    runner.train()


if __name__ == '__main__':
    run_main(main)

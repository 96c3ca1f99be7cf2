"""Run the command-line tools of the repo in subprocesses, as a user would, or import one as a module;
build their ``--cfg-options`` and read what they wrote."""
import hashlib
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def load_tool(rel_path, name=None):
    """Import ``<repo>/<rel_path>`` (e.g. ``'tools/analysis_tools/vis_windows.py'``) as a module: tools/
    is not a package. ``name`` defaults to the file name without ``.py``."""
    path = osp.join(REPO_ROOT, rel_path)
    name = name or osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_root_options(root, loaders=LOADERS, suffix=''):
    """``--cfg-options`` items pointing every dataloader's dataset at ``root``, with ``suffix`` appended
    (``'/'`` where the task's configs write their ``data_root`` with a trailing slash)."""
    return [f'{k}.dataset.data_root={root}{suffix}' for k in loaders]


def coco_options(root):
    """``--cfg-options`` items for a toy COCO tree at ``root``: every dataloader's ``data_root`` (with the
    trailing slash mmdet's COCO configs write) and the evaluators' annotation file."""
    ann_file = f'{root}/annotations/instances_val2017.json'
    return data_root_options(
        root, suffix='/') + [f'{k}.ann_file={ann_file}' for k in ('val_evaluator', 'test_evaluator')]


def run_tool(args, timeout=900, env=None, check=True):
    """Run ``python tools/<args>`` (or a shell script when args[0] ends in .sh) from the repo root.

    Returns the ``CompletedProcess``; with ``check`` a non-zero exit raises with the output tail.
    """
    inherited = dict(os.environ)
    # tests/conftest.py sets numba's CUDA simulator for this process; the tools must choose it
    # themselves, as they do for a user's shell
    inherited.pop('NUMBA_ENABLE_CUDASIM', None)
    full_env = dict(inherited, PYTHONPATH=REPO_ROOT, PYTHONUNBUFFERED='1', **(env or {}))
    if args[0].endswith('.sh'):
        cmd = ['bash', osp.join(REPO_ROOT, 'tools', args[0])] + list(args[1:])
        full_env['PYTHON'] = sys.executable
    else:
        cmd = [sys.executable, osp.join(REPO_ROOT, 'tools', args[0])] + list(args[1:])
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited {proc.returncode}\n--- stdout\n'
                             f'{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}')
    return proc


def read_scalars(work_dir):
    """All records of ``<work_dir>/<timestamp>/vis_data/scalars.json`` (every run, oldest first)."""
    records = []
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                records += [json.loads(line) for line in f if line.strip()]
    return records


def tree_digest(root):
    """``{relative path: sha1 of the bytes}`` of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


def write_child_config(folder, name, body, base):
    """Write ``<folder>/<name>``: a config inheriting ``base`` and adding ``body``; returns its path."""
    path = osp.join(str(folder), name)
    with open(path, 'w') as f:
        f.write(f"_base_ = '{base}'\n" + body)
    return path


def read_svite_updates(work_dir, rank=0):
    """The prune-and-grow updates the SViTE debug log of ``rank`` recorded (one dict per update)."""
    with open(osp.join(work_dir, f'svite_updates_rank{rank}.jsonl')) as f:
        return [json.loads(line) for line in f]


def train_losses(work_dir):
    """``{iter: loss}`` of the training records."""
    return {r['iter']: r['loss'] for r in read_scalars(work_dir) if 'loss' in r}


def train_briefly(config, work_dir, data_options, iters, warmup_iters, extra=(), env=None):
    """``tools/train.py`` for ``iters`` iterations without validation, logging every iteration and
    checkpointing once at the end (``iter_<iters>.pth``); ``warmup_iters`` ends the first scheduler."""
    run_tool([
        'train.py', config, '--work-dir', work_dir, '--cfg-options', *data_options,
        f'train_cfg.max_iters={iters}', 'train_cfg.val_begin=100000', 'default_hooks.logger.interval=1',
        f'default_hooks.checkpoint.interval={iters}', f'param_scheduler.0.end={warmup_iters}', *extra
    ],
             env=env)
    return work_dir


def assert_loss_drops(work_dir, iters, factor, window):
    """Every iteration logged a loss, and the mean of the last ``window`` is below ``factor`` times the
    mean of the first ``window``."""
    losses = train_losses(work_dir)
    assert sorted(losses) == list(range(1, iters + 1))
    first = sum(losses[i] for i in range(1, window + 1)) / window
    last = sum(losses[i] for i in range(iters - window + 1, iters + 1)) / window
    assert last < factor * first, (first, last)


def read_test_metrics(work_dir):
    """Metrics ``tools/test.py`` wrote to ``<work_dir>/<timestamp>/<timestamp>.json`` (newest run)."""
    stamp = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))[-1]
    with open(osp.join(work_dir, stamp, f'{stamp}.json')) as f:
        return json.load(f)

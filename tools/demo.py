"""``make demo``: the main job end to end on generated toy data, on the CPU.

    python tools/demo.py [--task cls] [--work-dir work_dirs/demo] [--data-root data]

Generates the task's toy dataset (if missing), trains the task's toy config with tools/train.py,
evaluates the last checkpoint with tools/test.py, and prints one table (also written to
``<work-dir>/<task>/results.md``). Every step is a real tool invocation a user could type.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# task -> (config, generator, generator args, data dir name, metric keys)
TASKS = {
    'cls': dict(
        config='configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py',
        generator='tools/dataset_converters/make_toy_imagenet.py',
        generator_args=['--num-classes', '8', '--per-class', '64', '--val-per-class', '16',
                        '--size', '32', '--seed', '0'],
        data='toy_imagenet',
        metrics=['accuracy/top1', 'accuracy/top5']),
}


def run(cmd, log):
    """Run one step, streaming its output, and stop the demo if it fails."""
    print(f'\n[demo] $ {" ".join(cmd)}', flush=True)
    t0 = time.time()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    with open(log, 'a') as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        for line in proc.stdout:
            sys.stdout.write(line)
            f.write(line)
        proc.wait()
    if proc.returncode != 0:
        sys.exit(f'[demo] step failed ({proc.returncode}): {" ".join(cmd)}; log: {log}')
    return time.time() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', default='cls', choices=sorted(TASKS))
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data')
    args = parser.parse_args()
    task = TASKS[args.task]
    work_dir = osp.abspath(osp.join(args.work_dir, args.task))
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, 'demo.log')
    data = osp.abspath(osp.join(args.data_root, task['data']))
    py = sys.executable
    timings = {}
    t_start = time.time()
    if not osp.isdir(data):
        timings['data'] = run([py, task['generator'], '--out', data] + task['generator_args'], log)
    opts = ['--cfg-options'] + [f'{k}.dataset.data_root={data}'
                                for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    train_dir = osp.join(work_dir, 'train')
    timings['train'] = run([py, 'tools/train.py', task['config'], '--work-dir', train_dir] + opts, log)
    with open(osp.join(train_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    test_dir = osp.join(work_dir, 'test')
    timings['test'] = run([py, 'tools/test.py', task['config'], ckpt, '--work-dir', test_dir] + opts, log)
    metrics = _last_metrics(test_dir)
    rows = ['| model | ' + ' | '.join(task['metrics']) + ' | train s | test s |',
            '|---|' + '---|' * (len(task['metrics']) + 2)]
    rows.append(f'| {osp.basename(task["config"])} | ' +
                ' | '.join(f'{metrics.get(k, float("nan")):.2f}' for k in task['metrics']) +
                f' | {timings["train"]:.0f} | {timings["test"]:.0f} |')
    table = '\n'.join(rows)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    print(f'\n[demo] task {args.task} finished in {time.time() - t_start:.0f} s\n{table}')


def _last_metrics(work_dir):
    """Metrics of the newest ``<timestamp>/<timestamp>.json`` that tools/test.py wrote."""
    stamps = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    for stamp in reversed(stamps):
        path = osp.join(work_dir, stamp, f'{stamp}.json')
        if osp.isfile(path):
            with open(path) as f:
                return json.load(f)
    return {}


if __name__ == '__main__':
    main()

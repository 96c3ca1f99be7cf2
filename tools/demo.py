"""``make demo``: SparseViT's whole pipeline end to end on generated toy data, on the CPU.

    python tools/demo.py [--task det|seg|mono3d|cls] [--work-dir work_dirs/demo] [--data-root data]

For the chosen task (default: instance segmentation, Mask R-CNN + SparseSwin on toy COCO):

1. generate the toy dataset (if missing);
2. train the dense model (``<task>_toy`` config);
3. sparsity-aware adaptation from it (``..._saa_toy``);
4. evolutionary search of per-layer ratios under a MACs budget (``tools/search.py``);
5. fine-tune with the found ratios (the ``finetune_*.py`` the search wrote);
6. ``tools/test.py`` on the dense and the searched model;
7. backbone MACs and latency of both (``tools/analysis_tools/benchmark_backbone.py``), the whole
   model's ``test_step`` latency of both, same weights (``tools/analysis_tools/benchmark_model.py``:
   what a user of the task gains, next to the backbone's speed-up and its Amdahl bound), a picture of
   the windows the searched model keeps and, where the toy set has object masks (det, seg), the share of
   object pixels those windows cover against random windows (``tools/analysis_tools/vis_windows.py``);
8. ``summary.png``: Pareto plot, kept-window figure and table (``tools/analysis_tools/demo_summary.py``);

then prints the tables and writes them, with ``summary.png``, ``pareto.png`` and the kept-window
pictures, to ``<work-dir>/<task>/``. Every step is a real tool invocation a user could type; each is logged.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = 'configs/sparsevit'

# Everything that differs between tasks: which generator, which configs, which metrics.
TASKS = {
    'det':
    dict(
        generator=[
            'tools/dataset_converters/make_toy_coco.py', '--num-train', '128', '--num-val', '24', '--size',
            '224', '--num-classes', '3', '--seed', '0'
        ],
        data='toy_coco',
        data_options=lambda d:
        [f'{k}.dataset.data_root={d}/' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')] +
        [f'{k}.ann_file={d}/annotations/instances_val2017.json' for k in ('val_evaluator', 'test_evaluator')],
        dense=f'{CFG}/maskrcnn_swin_t_toy.py',
        saa=f'{CFG}/maskrcnn_swin_t_saa_toy.py',
        search=f'{CFG}/maskrcnn_swin_t_search_toy.py',
        images=lambda d: sorted(glob.glob(f'{d}/val2017/*.jpg')),
        objects=lambda d: ['--ann-file', f'{d}/annotations/instances_val2017.json'],
        shape=(224, 224),
        # the whole-model benchmark runs on a synthetic image: score threshold 0 keeps max_per_img
        # detections in both rows, so the heads do the same work whatever boxes each backbone yields
        whole_model_options=['--cfg-options', 'model.test_cfg.rcnn.score_thr=0.0'],
        metrics={
            'bbox AP': 'coco/bbox_mAP',
            'segm AP': 'coco/segm_mAP'
        }),
    'cls':
    dict(
        generator=[
            'tools/dataset_converters/make_toy_imagenet.py', '--num-classes', '8', '--per-class', '32',
            '--val-per-class', '8', '--size', '224', '--colors', '6', '--seed', '0'
        ],
        # six colours for eight shapes: two pairs of classes share a colour and differ in shape alone
        # (one colour per class: 100 % top-1 for every ratio; two or four colours: 52 / 59 % dense)
        data='toy_imagenet_224_c6',
        data_options=lambda d:
        [f'{k}.dataset.data_root={d}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')],
        dense=f'{CFG}/swin_t_in1k_toy.py',
        saa=f'{CFG}/swin_t_in1k_saa_toy.py',
        search=f'{CFG}/swin_t_in1k_search_toy.py',
        images=lambda d: sorted(glob.glob(f'{d}/val/*/*.JPEG')),
        shape=(224, 224),
        metrics={'top-1': 'accuracy/top1'}),
    'seg':
    dict(
        generator=[
            'tools/dataset_converters/make_toy_ade.py', '--num-train', '64', '--num-val', '16', '--size',
            '128', '--num-classes', '3', '--seed', '0'
        ],
        data='toy_ade',
        data_options=lambda d:
        [f'{k}.dataset.data_root={d}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')],
        dense=f'{CFG}/upernet_swin_t_ade20k_toy.py',
        saa=f'{CFG}/upernet_swin_t_ade20k_saa_toy.py',
        search=f'{CFG}/upernet_swin_t_ade20k_search_toy.py',
        images=lambda d: sorted(glob.glob(f'{d}/images/validation/*.jpg')),
        objects=lambda d: ['--label-dir', f'{d}/annotations/validation', '--background', '0', '1'],
        shape=(128, 128),
        metrics={'mIoU': 'mIoU'}),
    'mono3d':
    dict(
        generator=[
            'tools/dataset_converters/make_toy_kitti_mono3d.py', '--num-train', '96', '--num-val', '24',
            '--seed', '0', '--classes', 'Car', '--num-objects', '2', '4', '--depth-range', '8', '20',
            '--yaw-spread', '15', '--size-jitter', '0.03'
        ],
        # cars only, heading along the road, 8-20 m, sizes within 3 %: 3D at KITTI's 0.7 IoU is learnable in
        # 560 iterations, and 24 val images hold ~70 cars (AP40 needs 40+ to be able to reach 100)
        data='toy_kitti',
        data_options=lambda d: [
            f'{k}.dataset.data_root={d}/' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')
        ] + [f'{k}.ann_file={d}/kitti_infos_val.pkl' for k in ('val_evaluator', 'test_evaluator')],
        dense=f'{CFG}/pgd_swin_t_kitti_mono3d_toy.py',
        saa=f'{CFG}/pgd_swin_t_kitti_mono3d_saa_toy.py',
        search=f'{CFG}/pgd_swin_t_kitti_mono3d_search_toy.py',
        images=lambda d: [f'{d}/training/image_2/{i}.png' for i in _read_lines(f'{d}/ImageSets/val.txt')],
        shape=(160, 480),
        whole_model_options=['--cfg-options', 'model.test_cfg.score_thr=0.0'],  # as for det
        metrics={
            'Car 2D AP40 mod.': 'Kitti metric/pred_instances_3d/KITTI/Car_2D_AP40_moderate_strict',
            'Car 3D AP40 mod.': 'Kitti metric/pred_instances_3d/KITTI/Car_3D_AP40_moderate_strict'
        }),
}

VAL_IMAGES = 24  # images the object recall is measured on (the first of the val set)
GENERATOR_STAMP = 'demo_generator.json'  # the generator command a data folder was made with
TRAIN_SEED = 0


def recall_table(recall):
    """Per-stage object recall of the searched model's kept windows against random windows."""
    lines = [
        f"object recall of the searched model on {len(recall['images'])} val images (share of "
        'ground-truth object pixels inside the processed windows, mean over the window-path '
        f"blocks; random: same number of windows drawn at random, {recall['num_draws']} draws, "
        f"seed {recall['seed']})", '', '| stage | object recall | random windows | k / nW |',
        '|---|---|---|---|'
    ]
    for st in recall['stages']:
        lines.append(f"| {st['stage']} | {st['object_recall']:.3f} | {st['random_recall']:.3f} | "
                     f"{st['chance']:.3f} |")
    return '\n'.join(lines)


class Demo:
    """Runs the steps, streaming each tool's output to the terminal and to ``demo.log``."""

    def __init__(self, task, work_dir, data_root):
        self.name = task
        self.task = TASKS[task]
        self.work_dir = osp.abspath(osp.join(work_dir, task))
        os.makedirs(self.work_dir, exist_ok=True)
        self.log = osp.join(self.work_dir, 'demo.log')
        self.data = osp.abspath(osp.join(data_root, self.task['data']))
        self.timings = {}

    def run(self, step, cmd):
        print(f'\n[demo] === {step}: {" ".join(cmd)}', flush=True)
        t0 = time.time()
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
        with open(self.log, 'a') as f:
            f.write(f'\n=== {step}: {" ".join(cmd)}\n')
            proc = subprocess.Popen(
                [sys.executable] + cmd,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True)
            for line in proc.stdout:
                sys.stdout.write(line)
                f.write(line)
            proc.wait()
        if proc.returncode != 0:
            sys.exit(f'[demo] step "{step}" failed (exit {proc.returncode}); full log: {self.log}')
        self.timings[step] = time.time() - t0

    def train(self, step, config, load_from=None):
        work = osp.join(self.work_dir, step)
        # a fixed seed: a rerun of the demo reproduces its numbers (mmengine draws a seed otherwise)
        opts = self.task['data_options'](self.data) + [f'randomness.seed={TRAIN_SEED}']
        if load_from:
            opts.append(f'load_from={load_from}')
        self.run(step, ['tools/train.py', config, '--work-dir', work, '--cfg-options'] + opts)
        return _last_checkpoint(work)

    def test(self, step, config, ckpt):
        work = osp.join(self.work_dir, step)
        self.run(step, ['tools/test.py', config, ckpt, '--work-dir', work, '--cfg-options'] +
                 self.task['data_options'](self.data))
        return _last_metrics(work)

    def generate_data(self):
        """Generate the toy data set unless ``self.data`` holds one made by the same generator command.

        The command is stamped into the folder (``GENERATOR_STAMP``). A folder with another stamp, or none
        (made by hand or by an older demo), is renamed to ``<folder>.old-<time>``, never deleted, and the
        data is generated afresh: training on a set the current configs were not written for would
        silently give other numbers than the docs.
        """
        command = self.task['generator'][:1] + ['--out', self.data] + self.task['generator'][1:]
        stamp = osp.join(self.data, GENERATOR_STAMP)
        if osp.isdir(self.data):
            if _read_stamp(stamp) == self.task['generator']:
                return
            kept = f'{self.data}.old-{time.strftime("%Y%m%d-%H%M%S")}'
            os.rename(self.data, kept)
            print(
                f'[demo] {self.data} was not generated by this demo\'s command '
                f'{" ".join(self.task["generator"])}: moved it to {kept} and generating it again',
                flush=True)
        self.run('data', command)
        with open(stamp, 'w') as f:
            json.dump(self.task['generator'], f)

    def main(self):
        t_start = time.time()
        task = self.task
        self.generate_data()
        dense_ckpt = self.train('dense', task['dense'])
        saa_ckpt = self.train('saa', task['saa'], load_from=dense_ckpt)
        search_dir = osp.join(self.work_dir, 'search')
        self.run('search',
                 ['tools/search.py', task['search'], saa_ckpt, '--work-dir', search_dir, '--cfg-options'] +
                 task['data_options'](self.data))
        with open(osp.join(search_dir, 'best_ratios.json')) as f:
            best = json.load(f)
        finetune_cfg = sorted(glob.glob(osp.join(search_dir, 'finetune_*.py')))[-1]
        ft_ckpt = self.train('finetune', finetune_cfg, load_from=saa_ckpt)
        dense_metrics = self.test('test_dense', task['dense'], dense_ckpt)
        sparse_metrics = self.test('test_searched', finetune_cfg, ft_ckpt)
        ratios = best['pruning_ratios']
        bench_json = osp.join(self.work_dir, 'backbone_benchmark.json')
        shape = [str(s) for s in task['shape']]
        self.run('benchmark', [
            'tools/analysis_tools/benchmark_backbone.py', task['dense'], '--ratios', 'dense',
            json.dumps(ratios), '--shape', *shape, '--repeat', '10', '--json', bench_json
        ])
        whole_json = osp.join(self.work_dir, 'model_benchmark.json')
        self.run('whole-model benchmark', [
            'tools/analysis_tools/benchmark_model.py', finetune_cfg, ft_ckpt, '--ratios',
            json.dumps(ratios), '--shape', *shape, '--repeat', '10', '--warmup', '2', '--json', whole_json
        ] + task.get('whole_model_options', []))
        vis_dir = osp.join(self.work_dir, 'kept_windows')
        images = task['images'](self.data)
        objects = task.get('objects', lambda d: [])(self.data)
        # the figure shows the first two images; object recall is averaged over the whole val set
        self.run('kept windows', [
            'tools/analysis_tools/vis_windows.py', finetune_cfg, ft_ckpt, *images[:VAL_IMAGES], '--ratios',
            json.dumps(ratios), '--shape', *shape, '--out-dir', vis_dir, '--figure-images', '2', *objects
        ])
        recall = None
        if objects:
            with open(osp.join(vis_dir, 'object_recall.json')) as f:
                recall = json.load(f)
        shutil.copy(osp.join(search_dir, 'pareto.png'), osp.join(self.work_dir, 'pareto.png'))
        with open(bench_json) as f:
            rows = {r['name']: r for r in json.load(f)['rows']}
        dense_row, sparse_row = rows['dense'], rows[json.dumps(ratios)]
        with open(whole_json) as f:  # rows: the package's dense Swin first, then the searched ratios
            whole_dense, whole_sparse = json.load(f)['rows']
        table = self.table([('dense', 'dense', dense_row, whole_dense, dense_metrics, None),
                            ('searched', json.dumps(ratios), sparse_row, whole_sparse, sparse_metrics, recall)
                            ])
        if recall is not None:
            table += '\n\n' + recall_table(recall)
        wall = time.time() - t_start
        steps = ', '.join(f'{k} {v:.0f} s' for k, v in self.timings.items())
        with open(osp.join(self.work_dir, 'results.md'), 'w') as f:
            f.write(f'{table}\n\nwall time {wall:.0f} s ({steps})\n')
        self.run('summary', [
            'tools/analysis_tools/demo_summary.py', search_dir,
            osp.join(vis_dir, 'kept_windows.png'),
            osp.join(self.work_dir, 'results.md'),
            osp.join(self.work_dir, 'summary.png'), '--title',
            f'mmsparse demo: {self.name} ({osp.basename(task["dense"])})'
        ])
        print(f'\n[demo] task {self.name} finished in {wall:.0f} s ({steps})\n\n{table}\n\n'
              f'[demo] written to {self.work_dir}: results.md, summary.png, pareto.png, kept_windows/, '
              'demo.log')

    def table(self, models):
        metrics = self.task['metrics']
        head = ['model', 'ratios', 'backbone GMACs', 'backbone ms (CPU)'] + list(metrics)
        head += ['backbone speed-up', 'whole-model ms (CPU)', 'whole-model speed-up (Amdahl bound)']
        with_recall = any(m[5] is not None for m in models)
        if with_recall:
            head += ['stage-0 object recall (random)']
        lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        base_ms = models[0][2]['median_ms']
        for name, ratios, bench, whole, scores, recall in models:
            vals = [name, ratios, f"{bench['gmacs_core']:.3f}", f"{bench['median_ms']:.1f}"]
            vals += [f'{scores.get(key, float("nan")):.3f}' for key in metrics.values()]
            vals.append(f"{base_ms / bench['median_ms']:.2f}x")
            vals += [
                f"{whole['whole_ms']:.1f}", f"{whole['whole_speedup']:.2f}x ({whole['amdahl_bound']:.2f}x)"
            ]
            if with_recall:  # the dense model processes every window: recall 1 by construction
                s0 = recall['stages'][0] if recall else None
                vals.append(f"{s0['object_recall']:.3f} ({s0['random_recall']:.3f})" if s0 else '1 (1)')
            lines.append('| ' + ' | '.join(vals) + ' |')
        return '\n'.join(lines)


def _read_stamp(path):
    """The generator command stamped at ``path``; None if there is none or it is unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _read_lines(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def _last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def _last_metrics(work_dir):
    """Metrics of the newest ``<timestamp>/<timestamp>.json`` that tools/test.py wrote."""
    stamps = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    for stamp in reversed(stamps):
        path = osp.join(work_dir, stamp, f'{stamp}.json')
        if osp.isfile(path):
            with open(path) as f:
                return json.load(f)
    raise FileNotFoundError(f'no metrics json under {work_dir}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', default='det', choices=sorted(TASKS))
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data')
    args = parser.parse_args()
    Demo(args.task, args.work_dir, args.data_root).main()


if __name__ == '__main__':
    main()

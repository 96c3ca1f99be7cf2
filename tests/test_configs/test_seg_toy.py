"""Semantic segmentation on the toy ADE20K: UPerNet + SparseSwin trains, `tools/test.py` reports the mIoU
that a hand computation on the dumped predictions gives, SAA samples the ratios it should, the search
config runs through tools/search.py, and every full config builds."""
import json
import os.path as osp
import pickle

import numpy as np
import pytest

from tests.tool_runner import (REPO_ROOT, assert_loss_drops, data_root_options, read_scalars,
                               read_test_metrics, run_tool, train_briefly)

CONFIG = 'configs/sparsevit/upernet_swin_t_ade20k_toy.py'
SAA_CONFIG = 'configs/sparsevit/upernet_swin_t_ade20k_saa_toy.py'
SEARCH_CONFIG = 'configs/sparsevit/upernet_swin_t_ade20k_search_toy.py'
FULL_CONFIGS = [
    'upernet_swin_t_ade20k', 'upernet_swin_t_ade20k_saa', 'upernet_swin_t_ade20k_search',
    'upernet_swin_t_ade20k_finetune', 'upernet_swin_t_cityscapes'
]
SIZE = 64  # toy image side: stage windows 9/4/1/1
NUM_CLASSES = 4  # background + 3 shapes (after reduce_zero_label)
ITERS = 16
# one thread per tool process: on a shared 2-core machine two threads per process thrash (10x slower)
ENV = dict(OMP_NUM_THREADS='1')


def data_opts(root):
    return data_root_options(root)


@pytest.fixture(scope='module')
def toy_ade(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('data') / 'toy_ade')
    run_tool([
        'dataset_converters/make_toy_ade.py', '--out', out, '--num-train', '8', '--num-val', '4', '--size',
        str(SIZE), '--num-classes', '3', '--seed', '0'
    ],
             env=ENV)
    return out


@pytest.fixture(scope='module')
def dense_run(toy_ade, tmp_path_factory):
    return train_briefly(
        CONFIG,
        str(tmp_path_factory.mktemp('seg') / 'dense'),
        data_opts(toy_ade),
        iters=ITERS,
        warmup_iters=4,
        extra=['randomness.seed=0'],
        env=ENV)


def test_dense_training_learns(dense_run):
    assert_loss_drops(dense_run, iters=ITERS, factor=0.95, window=3)


def _miou(preds, num_classes):
    """mmseg's IoUMetric by hand: per-class IoU over the whole set, classes never seen are NaN."""
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for p in preds:
        pred = np.asarray(p['pred_sem_seg']['data']).reshape(-1)
        gt = np.asarray(p['gt_sem_seg']['data']).reshape(-1)
        keep = gt != 255
        pred, gt = pred[keep], gt[keep]
        for c in range(num_classes):
            inter[c] += np.sum((pred == c) & (gt == c))
            union[c] += np.sum((pred == c) | (gt == c))
    with np.errstate(invalid='ignore', divide='ignore'):
        return 100.0 * np.nanmean(inter / union)


def test_test_tool_miou_matches_dumped_predictions(dense_run, toy_ade, tmp_path):
    out, work = str(tmp_path / 'preds.pkl'), str(tmp_path / 'test')
    run_tool(
        [
            'test.py', CONFIG,
            osp.join(dense_run, f'iter_{ITERS}.pth'), '--work-dir', work, '--out', out, '--cfg-options'
        ] + data_opts(toy_ade),
        env=ENV)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4
    assert np.asarray(preds[0]['pred_sem_seg']['data']).shape[-2:] == (SIZE, SIZE)
    metrics = read_test_metrics(work)
    assert {'aAcc', 'mIoU', 'mAcc'} <= set(metrics)
    assert 0.0 <= metrics['mIoU'] <= 100.0
    # IoUMetric rounds to 2 decimals
    assert metrics['mIoU'] == pytest.approx(_miou(preds, NUM_CLASSES), abs=0.006)


def test_saa_training_samples_ratios(dense_run, toy_ade, tmp_path):
    """Each SAA iteration runs at the ratios SwinRatioSpace draws for (seed, iteration): the MACs the hook
    logs equal the cost model's MACs of those ratios, and they change from iteration to iteration."""
    pytest.importorskip('mmsparse.engine.hooks.sparsity_aware_adaptation_hook')
    from mmsparse.sparsity.cost import swin_macs
    from mmsparse.sparsity.search_space import SwinRatioSpace
    work = str(tmp_path / 'saa')
    iters = 4
    run_tool(
        ['train.py', SAA_CONFIG, '--work-dir', work, '--cfg-options'] + data_opts(toy_ade) + [
            f'load_from={dense_run}/iter_{ITERS}.pth', f'train_cfg.max_iters={iters}',
            'train_cfg.val_begin=100000', 'default_hooks.logger.interval=1',
            f'default_hooks.checkpoint.interval={iters}', 'randomness.seed=0'
        ],
        env=ENV)
    records = [r for r in read_scalars(work) if 'loss' in r]
    assert [r['iter'] for r in records] == list(range(1, iters + 1))
    assert all(np.isfinite(r['loss']) for r in records)
    space = SwinRatioSpace(depths=(2, 2, 6, 2))
    expected = [
        swin_macs((SIZE, SIZE), space.to_block_ratios(space.sample_at(0, i)), embed_dims=32) / 1e9
        for i in range(iters)
    ]
    logged = [r['saa_gmacs'] for r in records]
    assert logged == pytest.approx(expected, rel=1e-6)
    dense = swin_macs((SIZE, SIZE), None, embed_dims=32) / 1e9
    assert all(v <= dense for v in logged) and len(set(np.round(logged, 9))) > 1


def test_search_config_runs(dense_run, toy_ade, tmp_path):
    """``tools/search.py`` on the toy search config: every candidate within the MACs budget, and the
    fine-tune config it writes inherits the toy fine-tune config with the best ratios."""
    pytest.importorskip('mmsparse.engine.loops.evolution_search_loop')
    from mmengine.config import Config

    from mmsparse.sparsity.cost import swin_macs
    work = str(tmp_path / 'search')
    budget = 0.12  # G MACs at 64x64 (dense 0.178)
    run_tool(
        [
            'search.py', SEARCH_CONFIG, f'{dense_run}/iter_{ITERS}.pth', '--work-dir', work, '--budget',
            str(budget), '--cfg-options'
        ] + data_opts(toy_ade) + [
            f'search_loop.input_shape=({SIZE},{SIZE})',
            'search_loop.population=4',  # 2 mutations + 2 crossovers: the loop's half-and-half default
            'search_loop.parents=2',
            'search_loop.generations=2',
            'search_loop.finetune_name=toy'
        ],
        env=ENV)
    history = [json.loads(line) for line in open(osp.join(work, 'search_history.jsonl'))]
    joined = [r for r in history if r['joined']]
    assert len(joined) == 8  # 2 populations of 4
    for r in joined:
        assert r['constraints']['macs'] <= budget
        assert 0.0 <= r['fitness'] <= 100.0
    with open(osp.join(work, 'best_ratios.json')) as f:
        best = json.load(f)
    assert best['fitness'] == max(r['fitness'] for r in joined)
    assert best['constraints']['macs'] == pytest.approx(
        swin_macs((SIZE, SIZE), best['pruning_ratios'], embed_dims=32) / 1e9, rel=1e-9)
    finetune = Config.fromfile(osp.join(work, 'finetune_toy.py'))
    assert finetune.model.backbone.pruning_ratios == best['pruning_ratios']
    assert finetune.train_cfg.type == 'IterBasedTrainLoop' and not finetune.get('custom_hooks')


@pytest.mark.parametrize('name', FULL_CONFIGS)
def test_full_config_builds(name):
    """Each full config parses, inherits mmseg's recipe, and builds its model (without weights)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmsparse  # noqa: F401
    from mmsparse.sparsity.ratios import validate_pruning_ratios
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'sparsevit', f'{name}.py'))
    assert cfg.default_scope == 'mmseg'
    backbone = cfg.model.backbone
    assert backbone.type == 'mmsparse.SparseSwin'
    assert (backbone.embed_dims, list(backbone.depths), list(backbone.num_heads)) == (96, [2, 2, 6,
                                                                                           2], [3, 6, 12, 24])
    assert 'mmsparse' in cfg.custom_imports['imports'] and cfg.data_hint
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'SparseSwin'
    # the fine-tune template names the reference's cfg2 set; the others are dense
    expected = validate_pruning_ratios('cfg2' if 'finetune' in name else None, (2, 2, 6, 2))
    assert model.backbone.get_pruning_ratios() == [list(s) for s in expected]
    classes = 19 if 'cityscapes' in name else 150
    assert model.decode_head.conv_seg.out_channels == classes
    assert model.decode_head.in_channels == [96, 192, 384, 768]


def test_missing_data_root_is_one_clear_error(tmp_path):
    proc = run_tool([
        'train.py', 'configs/sparsevit/upernet_swin_t_ade20k.py', '--work-dir',
        str(tmp_path / 'w'), '--cfg-options',
        'train_dataloader.dataset.data_root=' + str(tmp_path / 'nowhere')
    ],
                    check=False,
                    env=ENV)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert f'train_dataloader.dataset.data_root "{tmp_path / "nowhere"}" does not exist' in last
    assert 'ADEChallengeData2016' in last
    assert not osp.exists(tmp_path / 'w')

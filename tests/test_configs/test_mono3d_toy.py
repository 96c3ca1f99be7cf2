"""Monocular 3D on the toy KITTI: PGD + SparseSwin trains, `tools/test.py` reports KITTI AP (KittiMetric
on CPU through numba's CUDA simulator), SAA samples the ratios it should, the search config runs, and
every full config builds."""
import json
import os.path as osp

import numpy as np
import pytest

from tests.tool_runner import (REPO_ROOT, assert_loss_drops, data_root_options, read_scalars,
                               read_test_metrics, run_tool, train_briefly)

CONFIG = 'configs/sparsevit/pgd_swin_t_kitti_mono3d_toy.py'
SAA_CONFIG = 'configs/sparsevit/pgd_swin_t_kitti_mono3d_saa_toy.py'
SEARCH_CONFIG = 'configs/sparsevit/pgd_swin_t_kitti_mono3d_search_toy.py'
FULL_CONFIGS = [
    'pgd_swin_t_kitti_mono3d', 'pgd_swin_t_kitti_mono3d_saa', 'pgd_swin_t_kitti_mono3d_search',
    'pgd_swin_t_kitti_mono3d_finetune'
]
HEIGHT, WIDTH = 96, 160  # the generator's minimum; both multiples of 32, so no batch padding
ITERS = 16
PREFIX = 'Kitti metric/pred_instances_3d/KITTI/'
# one thread per tool process: on a shared 2-core machine two threads per process thrash (10x slower)
ENV = dict(OMP_NUM_THREADS='1')


def data_opts(root):
    return data_root_options(
        root, suffix='/') + [
            f'{k}.ann_file={root}/kitti_infos_val.pkl' for k in ('val_evaluator', 'test_evaluator')
        ]


@pytest.fixture(scope='module')
def toy_kitti(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('data') / 'toy_kitti')
    # focal 160 keeps every box 25-47 px high at this size, so KITTI's moderate level counts them all
    run_tool([
        'dataset_converters/make_toy_kitti_mono3d.py', '--out', out, '--num-train', '8', '--num-val', '4',
        '--width',
        str(WIDTH), '--height',
        str(HEIGHT), '--focal', '160', '--seed', '0'
    ],
             env=ENV)
    return out


@pytest.fixture(scope='module')
def dense_run(toy_kitti, tmp_path_factory):
    return train_briefly(
        CONFIG,
        str(tmp_path_factory.mktemp('mono3d') / 'dense'),
        data_opts(toy_kitti),
        iters=ITERS,
        warmup_iters=4,
        extra=['randomness.seed=0'],
        env=ENV)


def test_dense_training_learns(dense_run):
    assert_loss_drops(dense_run, iters=ITERS, factor=0.85, window=3)


def test_test_tool_reports_kitti_ap(dense_run, toy_kitti, tmp_path):
    work = str(tmp_path / 'test')
    run_tool(
        ['test.py', CONFIG,
         osp.join(dense_run, f'iter_{ITERS}.pth'), '--work-dir', work, '--cfg-options'] +
        data_opts(toy_kitti),
        env=ENV)
    metrics = read_test_metrics(work)
    for cls in ('Pedestrian', 'Cyclist', 'Car'):
        for kind in ('3D', 'BEV', '2D'):
            for level in ('easy', 'moderate', 'hard'):
                key = f'{PREFIX}{cls}_{kind}_AP40_{level}_strict'
                assert 0.0 <= metrics[key] <= 100.0, key
    for level in ('easy', 'moderate', 'hard'):
        assert 0.0 <= metrics[f'{PREFIX}Overall_3D_AP40_{level}'] <= 100.0
        assert 0.0 <= metrics[f'Kitti metric/pred_instances/KITTI/Overall_2D_AP40_{level}'] <= 100.0
    # KITTI's overall AP is the mean over the three classes
    for kind in ('3D', '2D'):
        per_class = [
            metrics[f'{PREFIX}{c}_{kind}_AP40_moderate_strict'] for c in ('Pedestrian', 'Cyclist', 'Car')
        ]
        assert metrics[f'{PREFIX}Overall_{kind}_AP40_moderate'] == pytest.approx(np.mean(per_class), abs=1e-3)


def test_saa_training_samples_ratios(dense_run, toy_kitti, tmp_path):
    """Each SAA iteration runs at the ratios SwinRatioSpace draws for (seed, iteration): the MACs the hook
    logs equal the cost model's MACs of those ratios at the batch's 96x160 input."""
    pytest.importorskip('mmsparse.engine.hooks.sparsity_aware_adaptation_hook')
    from mmsparse.sparsity.cost import swin_macs
    from mmsparse.sparsity.search_space import SwinRatioSpace
    work = str(tmp_path / 'saa')
    iters = 4
    run_tool(
        ['train.py', SAA_CONFIG, '--work-dir', work, '--cfg-options'] + data_opts(toy_kitti) + [
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
        swin_macs((HEIGHT, WIDTH), space.to_block_ratios(space.sample_at(0, i)), embed_dims=32) / 1e9
        for i in range(iters)
    ]
    logged = [r['saa_gmacs'] for r in records]
    assert logged == pytest.approx(expected, rel=1e-6)
    assert len(set(np.round(logged, 9))) > 1


def test_search_config_runs(dense_run, toy_kitti, tmp_path):
    """``tools/search.py`` on the toy search config, at its smallest (one population of 2): candidates
    within the MACs budget, scored by the KITTI metric, and the fine-tune config written with the best
    ratios."""
    pytest.importorskip('mmsparse.engine.loops.evolution_search_loop')
    from mmengine.config import Config

    from mmsparse.sparsity.cost import swin_macs
    work = str(tmp_path / 'search')
    budget = 0.2  # G MACs at 96x160 (dense 0.279)
    # through tools/search.py, which must pick numba's CUDA simulator for KittiMetric by itself
    run_tool(
        [
            'search.py', SEARCH_CONFIG, f'{dense_run}/iter_{ITERS}.pth', '--work-dir', work, '--budget',
            str(budget), '--cfg-options'
        ] + data_opts(toy_kitti) + [
            f'search_loop.input_shape=({HEIGHT},{WIDTH})', 'search_loop.population=2',
            'search_loop.parents=2', 'search_loop.num_mutation=1', 'search_loop.num_crossover=1',
            'search_loop.generations=1', 'search_loop.report_references=False',
            'search_loop.finetune_name=toy'
        ],
        env=ENV)
    history = [json.loads(line) for line in open(osp.join(work, 'search_history.jsonl'))]
    joined = [r for r in history if r['joined']]
    assert len(joined) == 2
    for r in joined:
        assert r['constraints']['macs'] <= budget
        assert 0.0 <= r['fitness'] <= 100.0
    with open(osp.join(work, 'best_ratios.json')) as f:
        best = json.load(f)
    assert best['score_key'] == 'Kitti metric/pred_instances_3d/KITTI/Car_3D_AP40_moderate_strict'
    assert best['fitness'] == max(r['fitness'] for r in joined)
    assert best['constraints']['macs'] == pytest.approx(
        swin_macs((HEIGHT, WIDTH), best['pruning_ratios'], embed_dims=32) / 1e9, rel=1e-9)
    finetune = Config.fromfile(osp.join(work, 'finetune_toy.py'))
    assert finetune.model.backbone.pruning_ratios == best['pruning_ratios']


@pytest.mark.parametrize('name', FULL_CONFIGS)
def test_full_config_builds(name):
    """Each full config parses, inherits mmdet3d's PGD-KITTI recipe, and builds its model (no weights)."""
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmsparse  # noqa: F401
    from mmsparse.sparsity.ratios import validate_pruning_ratios
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'sparsevit', f'{name}.py'))
    assert cfg.default_scope == 'mmdet3d'
    backbone = cfg.model.backbone
    assert backbone.type == 'mmsparse.SparseSwin'
    assert (backbone.embed_dims, list(backbone.depths), list(backbone.num_heads)) == (96, [2, 2, 6,
                                                                                           2], [3, 6, 12, 24])
    assert 'mmsparse' in cfg.custom_imports['imports'] and cfg.data_hint
    assert cfg.val_dataloader.dataset.load_type == 'fov_image_based'
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet3d')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'FCOSMono3D' and type(model.bbox_head).__name__ == 'PGDHead'
    assert type(model.backbone).__name__ == 'SparseSwin'
    assert [c.conv.in_channels for c in model.neck.lateral_convs] == [96, 192, 384, 768]
    assert model.bbox_head.num_classes == 3
    # the fine-tune template names the reference's cfg2 set; the others are dense
    expected = validate_pruning_ratios('cfg2' if 'finetune' in name else None, (2, 2, 6, 2))
    assert model.backbone.get_pruning_ratios() == [list(s) for s in expected]


def test_missing_data_root_is_one_clear_error(tmp_path):
    missing = str(tmp_path / 'nowhere')
    proc = run_tool([
        'train.py', 'configs/sparsevit/pgd_swin_t_kitti_mono3d.py', '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', f'train_dataloader.dataset.data_root={missing}'
    ],
                    check=False,
                    env=ENV)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert f'train_dataloader.dataset.data_root "{missing}" does not exist' in last
    assert 'data/kitti/' in last and 'kitti_infos_' in last
    assert not osp.exists(tmp_path / 'w')

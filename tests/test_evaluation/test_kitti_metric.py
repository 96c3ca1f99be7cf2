"""KITTI AP through the toy config's test evaluator: ground truth fed back as detections scores 100."""
import numpy as np
import pytest
import torch

from tests.tool_runner import REPO_ROOT, run_tool

CONFIG = 'configs/sparsevit/pgd_swin_t_kitti_mono3d_toy.py'
PREFIX = 'Kitti metric/pred_instances_3d/KITTI/'


@pytest.fixture(scope='module')
def toy_kitti(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('data') / 'toy_kitti')
    # KITTI's AP40 samples 40 recall points among the detections' scores, so fewer than 40 ground-truth
    # boxes cap it below 100 even for perfect boxes: 150 small val images hold 51 moderate cars
    run_tool([
        'dataset_converters/make_toy_kitti_mono3d.py', '--out', out, '--num-train', '1', '--num-val', '150',
        '--width', '160', '--height', '96', '--focal', '160', '--seed', '3'
    ],
             env=dict(OMP_NUM_THREADS='1'))
    return out


def _perfect_predictions(cfg, root):
    """One data sample per val image with its ground truth as the prediction.

    Scores are distinct (KITTI's AP picks its thresholds among the scores: equal scores would leave a
    single operating point and cap AP40 far below 100 even for perfect boxes).
    """
    from mmdet3d.registry import DATASETS
    from mmdet3d.structures import Det3DDataSample  # noqa: F401  (registers the packing types)
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.update(
        data_root=root + '/',
        test_mode=False,
        pipeline=[
            dict(
                type='LoadAnnotations3D',
                with_bbox=True,
                with_label=True,
                with_attr_label=False,
                with_bbox_3d=True,
                with_label_3d=True,
                with_bbox_depth=True),
            dict(
                type='Pack3DDetInputs',
                keys=['gt_bboxes', 'gt_bboxes_labels', 'gt_bboxes_3d', 'gt_labels_3d'])
        ])
    dataset = DATASETS.build(ds_cfg)
    samples, rank = [], 0
    for i in range(len(dataset)):
        ds = dataset[i]['data_samples']
        g3, g2 = ds.gt_instances_3d, ds.gt_instances
        n = len(g3.labels_3d)
        scores = 1.0 - 0.01 * torch.arange(rank, rank + n, dtype=torch.float32)
        rank += n
        samples.append(
            dict(
                sample_idx=ds.sample_idx,
                pred_instances_3d=dict(bboxes_3d=g3.bboxes_3d, labels_3d=g3.labels_3d, scores_3d=scores),
                pred_instances=dict(bboxes=g2.bboxes, labels=g2.labels, scores=scores)))
    return dataset, samples


def _evaluate(toy_kitti, **metric_options):
    from mmengine.config import Config
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope

    import mmsparse  # noqa: F401
    cfg = Config.fromfile(f'{REPO_ROOT}/{CONFIG}')
    cfg.merge_from_dict({'test_evaluator.ann_file': f'{toy_kitti}/kitti_infos_val.pkl'})
    cfg.test_evaluator.update(metric_options)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset, samples = _perfect_predictions(cfg, toy_kitti)
        evaluator = Evaluator(cfg.test_evaluator)  # what tools/test.py's Runner builds
        evaluator.dataset_meta = dataset.metainfo
        evaluator.process(samples)
        return evaluator.evaluate(len(samples)), dataset


def test_perfect_prediction_scores_ap_100(toy_kitti):
    metrics, dataset = _evaluate(toy_kitti)
    cars = [
        inst for i in range(len(dataset)) for inst in dataset.get_data_info(i)['instances']
        if inst['bbox_label_3d'] == 2
    ]
    assert len(cars) >= 41  # enough for every AP40 recall point (easy has fewer: not checked)
    for kind in ('3D', 'BEV', '2D'):
        for level in ('moderate', 'hard'):
            assert metrics[f'{PREFIX}Car_{kind}_AP40_{level}_strict'] == pytest.approx(100.0), (kind, level)


def test_simulated_cuda_kernel_misses_a_box_against_its_copy():
    # why the metric swaps the overlaps: under numba's CUDA simulator mmdet3d's kernel collects only two
    # corners of two coinciding boxes and scores IoU 0; the exact overlap scores 1
    import os
    if os.environ.get('NUMBA_ENABLE_CUDASIM') != '1':
        pytest.skip('only the simulator is known to miss; a GPU run is not checked here')
    from mmdet3d.evaluation.functional.kitti_utils.rotate_iou import rotate_iou_gpu_eval

    from mmsparse.evaluation.rotated_iou import rotate_iou_exact
    box = np.array([[1.0, 2.0, 4.0, 2.0, 0.3]])
    assert rotate_iou_gpu_eval(box, box.copy())[0, 0] == 0.0
    assert rotate_iou_exact(box, box.copy())[0, 0] == pytest.approx(1.0)


def test_unknown_rotated_iou_mode_is_refused():
    from mmsparse.evaluation import KittiMetric
    with pytest.raises(ValueError, match="rotated_iou must be one of"):
        KittiMetric(ann_file='x.pkl', rotated_iou='gpu')

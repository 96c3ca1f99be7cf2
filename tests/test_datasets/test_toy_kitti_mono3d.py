"""make_toy_kitti_mono3d.py writes infos that mmdet3d's KittiDataset (fov_image_based) and
KittiMetric accept, with 2D/3D targets consistent with the rendered pixels."""
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest

from mmsparse.datasets.toy import box3d_corners

# KittiMetric's BEV/3D IoU kernels are numba.cuda: tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1
# before numba is imported, so they run on the simulator.

CLASSES = ('Pedestrian', 'Cyclist', 'Car')
ARGS = ['--num-train', '4', '--num-val', '4']


@pytest.fixture(scope='module')
def kitti_tree(tmp_path_factory, toy_tool):
    tool = toy_tool('make_toy_kitti_mono3d')
    root = str(tmp_path_factory.mktemp('toy_kitti'))
    tool.main(['--out', root, '--seed', '7'] + ARGS)
    return tool, root


def _infos(root, split):
    with open(osp.join(root, f'kitti_infos_{split}.pkl'), 'rb') as f:
        return pickle.load(f)


def _dataset(root, split):
    from mmdet3d.datasets import KittiDataset
    from mmdet3d.datasets.transforms import LoadAnnotations3D, LoadImageFromFileMono3D, Pack3DDetInputs
    pipeline = [
        LoadImageFromFileMono3D(),
        LoadAnnotations3D(
            with_bbox=True,
            with_label=True,
            with_attr_label=False,
            with_bbox_3d=True,
            with_label_3d=True,
            with_bbox_depth=True),
        Pack3DDetInputs(keys=[
            'img', 'gt_bboxes', 'gt_bboxes_labels', 'gt_bboxes_3d', 'gt_labels_3d', 'centers_2d', 'depths'
        ])
    ]
    return KittiDataset(
        data_root=root,
        ann_file=f'kitti_infos_{split}.pkl',
        data_prefix=dict(img='training/image_2'),
        load_type='fov_image_based',
        pipeline=pipeline,
        modality=dict(use_lidar=False, use_camera=True),
        default_cam_key='CAM2',
        box_type_3d='Camera',
        metainfo=dict(classes=CLASSES))


def test_center_2d_is_projected_gravity_centre(kitti_tree):
    """Hand projection: u = fx*x/z + cx, v = fy*(y - h/2)/z + cy, depth = z."""
    _, root = kitti_tree
    infos = _infos(root, 'train')
    assert infos['metainfo'] == dict(
        categories={
            'Pedestrian': 0,
            'Cyclist': 1,
            'Car': 2
        }, dataset='kitti', info_version='1.1')
    assert [d['sample_idx'] for d in infos['data_list']] == [0, 1, 2, 3]
    k = np.array(infos['data_list'][0]['images']['CAM2']['cam2img'])
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    assert (fx, fy, cx, cy) == (400.0, 400.0, 240.0, 48.0)
    n = 0
    for info in infos['data_list']:
        for inst in info['cam_instances']['CAM2']:
            x, y, z, l, h, w, ry = inst['bbox_3d']
            np.testing.assert_allclose(
                inst['center_2d'], [fx * x / z + cx, fy * (y - h / 2) / z + cy], rtol=1e-9)
            assert inst['depth'] == pytest.approx(z)
            n += 1
        assert info['instances'] and len(info['instances']) == len(info['cam_instances']['CAM2'])
    assert n >= 4


def test_boxes_agree_with_mmdet3d_and_pixels(kitti_tree):
    """Corners equal CameraInstance3DBoxes.corners, bbox is their projected extent, pixels match."""
    import torch
    from mmdet3d.structures import CameraInstance3DBoxes, points_cam2img
    _, root = kitti_tree
    info = _infos(root, 'val')['data_list'][1]
    cam = info['cam_instances']['CAM2']
    boxes = CameraInstance3DBoxes(torch.tensor([c['bbox_3d'] for c in cam], dtype=torch.float64))
    ours = np.stack([box3d_corners(c['bbox_3d']) for c in cam])
    theirs = boxes.corners.numpy()
    for a, b in zip(ours, theirs):  # same 8 points, possibly in another order
        np.testing.assert_allclose(np.sort(a.round(6), 0), np.sort(b.round(6), 0), atol=1e-5)
    uv = points_cam2img(boxes.corners, torch.tensor(info['images']['CAM2']['cam2img'])).numpy()
    np.testing.assert_allclose([c['bbox'] for c in cam], np.concatenate([uv.min(1), uv.max(1)], 1), atol=1e-4)
    img = cv2.imread(osp.join(root, 'training', 'image_2', info['images']['CAM2']['img_path']))
    for c in cam:  # at the projected gravity centre: the class's dominant channel (R, G, B)
        u, v = np.round(c['center_2d']).astype(int)
        rgb = img[v, u, ::-1].astype(int)
        assert rgb.argmax() == c['bbox_label'] and rgb.max() - rgb.min() > 60, rgb


def test_kitti_dataset_loads(kitti_tree):
    _, root = kitti_tree
    ds = _dataset(root, 'train')
    infos = _infos(root, 'train')['data_list']
    assert len(ds) == 4 and tuple(ds.metainfo['classes']) == CLASSES
    for i in range(len(ds)):
        cam = infos[i]['cam_instances']['CAM2']
        sample = ds[i]
        data = sample['data_samples']
        assert tuple(sample['inputs']['img'].shape) == (3, 160, 480)
        np.testing.assert_array_equal(data.gt_instances_3d.labels_3d.numpy(),
                                      [c['bbox_label_3d'] for c in cam])
        np.testing.assert_allclose(
            data.gt_instances_3d.bboxes_3d.tensor.numpy(), [c['bbox_3d'] for c in cam], rtol=1e-5)
        np.testing.assert_allclose(
            data.gt_instances_3d.centers_2d.numpy(), [c['center_2d'] for c in cam], rtol=1e-5)
        np.testing.assert_allclose(data.gt_instances.bboxes.numpy(), [c['bbox'] for c in cam], rtol=1e-5)


@pytest.mark.filterwarnings('ignore:invalid value encountered:RuntimeWarning')
def test_kitti_metric_reads_the_infos(kitti_tree):
    """KittiMetric on (near) perfect predictions gives KITTI's tiny-set AP40 from our box counts.

    With n ground-truth boxes of a class and n perfect detections (distinct scores) KITTI's AP40
    fills n precision slots, the first of which it skips: AP40 = min(n - 1, 40) / 40 * 100. Every box
    here is unoccluded, untruncated and >= 25 px high, so all count for moderate/hard and those
    >= 40 px high for easy. The 3D predictions are shifted by 1 cm: mmdet3d's rotated IoU returns 0
    for a rotated box against an identical copy (coincident edges), on the numba CUDA simulator.
    """
    import torch
    from mmdet3d.evaluation import KittiMetric
    from mmdet3d.structures import CameraInstance3DBoxes
    _, root = kitti_tree
    infos = _infos(root, 'val')['data_list']
    metric = KittiMetric(ann_file=osp.join(root, 'kitti_infos_val.pkl'), metric='bbox')
    metric.dataset_meta = dict(classes=CLASSES)
    scores = iter(np.linspace(1.0, 0.5, 100).tolist())
    for info in infos:
        cam = info['cam_instances']['CAM2']
        labels = torch.tensor([c['bbox_label_3d'] for c in cam])
        boxes_3d = torch.tensor([c['bbox_3d'] for c in cam])
        score = torch.tensor([next(scores) for _ in cam])
        valid = metric.convert_valid_bboxes(
            dict(bboxes_3d=CameraInstance3DBoxes(boxes_3d.clone()), scores_3d=score, labels_3d=labels), info)
        np.testing.assert_allclose(valid['bbox'], [c['bbox'] for c in cam], atol=1e-3)
        np.testing.assert_allclose(valid['box3d_camera'], boxes_3d, atol=1e-5)
        boxes_3d[:, 0] += 0.01
        # What the Evaluator hands over: Det3DDataSample.to_dict() of the predictions.
        pred_3d = dict(bboxes_3d=CameraInstance3DBoxes(boxes_3d), scores_3d=score, labels_3d=labels)
        # An empty 2D entry skips the separate 2D evaluation (the 3D one reports 2D AP too).
        metric.process(
            {}, [dict(pred_instances_3d=pred_3d, pred_instances=dict(), sample_idx=info['sample_idx'])])
    results = metric.evaluate(len(infos))
    boxes = [c for d in infos for c in d['instances']]
    for k, name in enumerate(CLASSES):
        heights = [c['bbox'][3] - c['bbox'][1] for c in boxes if c['bbox_label'] == k]
        for level, n in (('easy', sum(h >= 40
                                      for h in heights)), ('moderate', len(heights)), ('hard', len(heights))):
            expected = min(max(n - 1, 0), 40) / 40 * 100
            for kind in ('2D', 'BEV', '3D'):
                key = f'Kitti metric/pred_instances_3d/KITTI/{name}_{kind}_AP40_{level}_strict'
                assert results[key] == pytest.approx(expected), (key, results[key], expected)
    assert len(boxes) >= 6


def test_determinism(kitti_tree, tmp_path, digest):
    tool, root = kitti_tree
    tool.main(['--out', str(tmp_path / 'same'), '--seed', '7'] + ARGS)
    tool.main(['--out', str(tmp_path / 'other'), '--seed', '8'] + ARGS)
    ref = digest(root)
    assert digest(tmp_path / 'same') == ref
    other = digest(tmp_path / 'other')
    assert other.keys() == ref.keys()
    assert all(other[k] != ref[k] for k in ref if not k.startswith('ImageSets'))


def test_bad_args(toy_tool):
    tool = toy_tool('make_toy_kitti_mono3d')
    with pytest.raises(ValueError, match='--focal must be > 0'):
        tool.parse_args(['--focal', '0'])


ROAD_ARGS = [
    '--classes', 'Car', '--num-objects', '2', '4', '--depth-range', '8', '20', '--yaw-spread', '15',
    '--size-jitter', '0.03'
]


def test_road_scene_flags_draw_what_they_say(toy_tool, tmp_path):
    """Cars only (label 2 of the three KITTI classes), heading within 15 degrees of the optical axis,
    bottom-centre depth in [8, 20] m, sizes within 3 % of KITTI's typical car, at most 4 per image."""
    from mmsparse.datasets.toy import KITTI_CLASS_SPECS
    tool = toy_tool('make_toy_kitti_mono3d')
    tool.main(['--out', str(tmp_path), '--seed', '3', '--num-train', '6', '--num-val', '2'] + ROAD_ARGS)
    infos = _infos(str(tmp_path), 'train')['data_list'] + _infos(str(tmp_path), 'val')['data_list']
    car = np.array(KITTI_CLASS_SPECS['Car']['dims'])
    boxes = np.array([c['bbox_3d'] for d in infos for c in d['cam_instances']['CAM2']])
    labels = [c['bbox_label_3d'] for d in infos for c in d['cam_instances']['CAM2']]
    assert all(1 <= len(d['instances']) <= 4 for d in infos) and len(boxes) >= 2 * len(infos)
    assert set(labels) == {CLASSES.index('Car')}
    assert ((boxes[:, 2] >= 8) & (boxes[:, 2] <= 20)).all()
    np.testing.assert_allclose(boxes[:, 3:6] / car, 1.0, atol=0.03 + 1e-9)
    # angle to the nearest of -90 and +90 degrees (heading away from / towards the camera)
    off_axis = np.abs((np.degrees(boxes[:, 6]) % 180) - 90)
    assert (off_axis <= 15 + 1e-9).all() and off_axis.max() > 1
    away = np.cos(boxes[:, 6] + np.pi / 2) > 0  # ry near -pi/2: heading along +z
    assert 0 < away.sum() < len(boxes)


def test_default_flags_keep_the_original_scenes(toy_tool, tmp_path, digest):
    """Spelling the defaults out (all classes, 1-3 objects, 7-25 m, any heading, 8 % sizes) writes the
    very same files as giving no flag: existing toy sets stay reproducible by seed."""
    tool = toy_tool('make_toy_kitti_mono3d')
    tool.main(['--out', str(tmp_path / 'plain'), '--seed', '7'] + ARGS)
    tool.main(['--out', str(tmp_path / 'spelled'), '--seed', '7'] + ARGS + [
        '--classes', *CLASSES, '--num-objects', '1', '3', '--depth-range', '7', '25', '--size-jitter', '0.08'
    ])
    assert digest(tmp_path / 'plain') == digest(tmp_path / 'spelled')


@pytest.mark.parametrize('flags, message', [
    (['--classes', 'Truck'], '--classes must be distinct names'),
    (['--classes', 'Car', 'Car'], '--classes must be distinct names'),
    (['--num-objects', '3', '2'], '--num-objects must satisfy 1 <= MIN <= MAX'),
    (['--depth-range', '9', '8'], '--depth-range must satisfy 0 < NEAR < FAR'),
    (['--yaw-spread', '91'], r'--yaw-spread must be in \[0, 90\] degrees'),
    (['--size-jitter', '0.5'], r'--size-jitter must be in \[0, 0.5\)'),
])
def test_bad_scene_flags_name_the_flag(toy_tool, flags, message):
    tool = toy_tool('make_toy_kitti_mono3d')
    with pytest.raises(ValueError, match=message):
        tool.parse_args(flags)

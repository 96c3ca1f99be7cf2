"""make_toy_coco.py writes COCO json + images that pycocotools and mmdet's CocoDataset load."""
import os.path as osp

import cv2
import numpy as np
import pytest

from mmsparse.datasets.toy import COLORS, class_catalogue, random_scene

CLASSES = ('circle', 'square', 'triangle')
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:pycocotools.mask')
ARGS = ['--num-train', '6', '--num-val', '3', '--size', '96', '--num-classes', '3']


@pytest.fixture(scope='module')
def coco_tree(tmp_path_factory, toy_tool):
    tool = toy_tool('make_toy_coco')
    root = str(tmp_path_factory.mktemp('toy_coco'))
    tool.main(['--out', root, '--seed', '1'] + ARGS)
    return tool, root


def _coco(root, split):
    from pycocotools.coco import COCO
    return COCO(osp.join(root, 'annotations', f'instances_{split}2017.json'))


def test_json_matches_drawn_pixels(coco_tree):
    """Polygons decode (pycocotools) to the painted masks; area/bbox/colour agree with them."""
    _, root = coco_tree
    coco = _coco(root, 'train')
    assert sorted(coco.getImgIds()) == [1, 2, 3, 4, 5, 6]
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    catalogue = class_catalogue(3)
    for image_id in (1, 4):
        # Re-draw image i = image_id - 1 of split 0 from its own seed to get the true masks.
        rng = np.random.default_rng([1, 0, image_id - 1])
        _, drawn = random_scene(rng, 96, 96, catalogue, num_objects=(1, 4), radius_range=(0.1, 0.22))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert len(anns) == len(drawn) >= 1
        img = cv2.cvtColor(
            cv2.imread(osp.join(root, 'train2017', f'{image_id:012d}.jpg')), cv2.COLOR_BGR2RGB).astype(float)
        for ann, inst in zip(anns, drawn):
            assert ann['category_id'] == inst.label + 1 and ann['iscrowd'] == 0
            mask = coco.annToMask(ann).astype(bool)
            iou = (mask & inst.mask).sum() / (mask | inst.mask).sum()
            assert iou > 0.95, iou
            assert abs(mask.sum() - ann['area']) <= 0.05 * ann['area']
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            np.testing.assert_allclose(
                [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], [x, y, x + w, y + h], atol=1.0)
            inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            np.testing.assert_allclose(img[inner].mean(0), COLORS[catalogue[inst.label][0]], atol=12)


def test_mmdet_coco_dataset_loads(coco_tree):
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
    _, root = coco_tree
    coco = _coco(root, 'val')
    ds = CocoDataset(
        data_root=root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        metainfo=dict(classes=CLASSES),
        pipeline=[LoadImageFromFile(),
                  LoadAnnotations(with_bbox=True, with_mask=True),
                  PackDetInputs()])
    assert len(ds) == 3 and ds.metainfo['classes'] == CLASSES
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=info['img_id']))
        assert [d['bbox_label'] for d in info['instances']] == [a['category_id'] - 1 for a in anns]
        for d, a in zip(info['instances'], anns):
            x, y, w, h = a['bbox']
            np.testing.assert_allclose(d['bbox'], [x, y, x + w, y + h])
        sample = ds[i]['data_samples']
        assert sample.img_shape == (96, 96)
        masks = sample.gt_instances.masks.to_ndarray()
        ref = np.stack([coco.annToMask(a) for a in anns])
        np.testing.assert_array_equal(masks, ref)  # same polygons, same rasteriser
        np.testing.assert_array_equal(sample.gt_instances.labels.numpy(),
                                      [a['category_id'] - 1 for a in anns])


def test_determinism(coco_tree, tmp_path, digest):
    tool, root = coco_tree
    tool.main(['--out', str(tmp_path / 'same'), '--seed', '1'] + ARGS)
    tool.main(['--out', str(tmp_path / 'other'), '--seed', '2'] + ARGS)
    ref = digest(root)
    assert digest(tmp_path / 'same') == ref
    other = digest(tmp_path / 'other')
    assert other.keys() == ref.keys() and all(other[k] != ref[k] for k in ref)


def test_bad_args(toy_tool):
    tool = toy_tool('make_toy_coco')
    with pytest.raises(ValueError, match=r'--num-classes must be in \[2, 4\]'):
        tool.parse_args(['--num-classes', '5'])

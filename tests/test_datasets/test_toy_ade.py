"""make_toy_ade.py writes an ADE20K tree that mmseg's ADE20KDataset/BaseSegDataset load."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest

from mmsparse.datasets.toy import COLORS, class_catalogue

CLASSES = ('background', 'circle', 'square', 'triangle')
ARGS = ['--num-train', '4', '--num-val', '2', '--size', '64', '--num-classes', '3']


@pytest.fixture(scope='module')
def ade_tree(tmp_path_factory, toy_tool):
    tool = toy_tool('make_toy_ade')
    root = str(tmp_path_factory.mktemp('toy_ade'))
    tool.main(['--out', root, '--seed', '5'] + ARGS)
    return tool, root


def test_label_maps_match_pixels(ade_tree):
    """Raw PNG values are ADE's 1..K+1 (0 unused); each shape value marks its colour in the JPEG."""
    tool, root = ade_tree
    assert tool.class_names(3) == CLASSES
    catalogue = class_catalogue(3)
    pngs = sorted(glob.glob(osp.join(root, 'annotations', 'training', '*.png')))
    assert [osp.basename(p) for p in pngs] == [f'ADE_train_{i:08d}.png' for i in range(4)]
    for png in pngs:
        seg = cv2.imread(png, cv2.IMREAD_UNCHANGED)
        assert seg.dtype == np.uint8 and seg.shape == (64, 64)
        values = set(np.unique(seg).tolist())
        assert 1 in values and values <= {1, 2, 3, 4} and len(values) >= 2
        jpg = png.replace('annotations', 'images').replace('.png', '.jpg')
        img = cv2.cvtColor(cv2.imread(jpg), cv2.COLOR_BGR2RGB).astype(float)
        for v in values - {1}:
            inner = cv2.erode((seg == v).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            np.testing.assert_allclose(img[inner].mean(0), COLORS[catalogue[v - 2][0]], atol=12)
        # The background is dark grey: nowhere near any class colour.
        assert img[seg == 1].mean() < 110


@pytest.mark.parametrize('dataset', ['ADE20KDataset', 'BaseSegDataset'])
def test_mmseg_dataset_loads(ade_tree, dataset):
    import mmseg.datasets as D
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
    _, root = ade_tree
    kwargs = dict(
        data_root=root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=[LoadImageFromFile(), LoadAnnotations(),
                  PackSegInputs()])
    if dataset == 'BaseSegDataset':
        kwargs.update(
            metainfo=dict(classes=CLASSES), img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)
    ds = getattr(D, dataset)(**kwargs)
    assert len(ds) == 2
    if dataset == 'BaseSegDataset':
        assert ds.metainfo['classes'] == CLASSES
    else:  # ADE20K's 150 names; our ids 0..3 take its first four slots
        assert len(ds.metainfo['classes']) == 150
    for i in range(len(ds)):
        raw = cv2.imread(ds.get_data_info(i)['seg_map_path'], cv2.IMREAD_UNCHANGED)
        gt = ds[i]['data_samples'].gt_sem_seg.data.numpy()[0]
        np.testing.assert_array_equal(gt, raw.astype(np.int64) - 1)  # reduce_zero_label
        assert gt.min() >= 0 and gt.max() <= len(CLASSES) - 1


def test_determinism(ade_tree, tmp_path, digest):
    tool, root = ade_tree
    tool.main(['--out', str(tmp_path / 'same'), '--seed', '5'] + ARGS)
    tool.main(['--out', str(tmp_path / 'other'), '--seed', '6'] + ARGS)
    ref = digest(root)
    assert digest(tmp_path / 'same') == ref
    other = digest(tmp_path / 'other')
    assert other.keys() == ref.keys() and all(other[k] != ref[k] for k in ref)


def test_bad_args(toy_tool):
    tool = toy_tool('make_toy_ade')
    with pytest.raises(ValueError, match=r'--num-classes must be in \[1, 8\]'):
        tool.parse_args(['--num-classes', '9'])

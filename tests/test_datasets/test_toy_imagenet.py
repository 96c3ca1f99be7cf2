"""make_toy_imagenet.py writes a set that mmpretrain's own ImageNet/CustomDataset load unchanged."""
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mmsparse.datasets.toy import COLORS, random_scene

ARGS = ['--num-classes', '4', '--per-class', '3', '--val-per-class', '2', '--size', '32']


@pytest.fixture(scope='module')
def imagenet_tree(tmp_path_factory, toy_tool):
    tool = toy_tool('make_toy_imagenet')
    root = str(tmp_path_factory.mktemp('toy_imagenet'))
    tool.main(['--out', root, '--seed', '3'] + ARGS)
    return tool, root


def _object_color(image_rgb):
    """Nearest palette colour to the mean of the pixels far from the background median."""
    border = np.concatenate([image_rgb[0], image_rgb[-1], image_rgb[:, 0], image_rgb[:, -1]])
    diff = np.abs(image_rgb.astype(int) - np.median(border, 0)).sum(-1)
    mean = image_rgb[diff > 90].mean(0)
    return min(COLORS, key=lambda c: np.abs(np.array(COLORS[c]) - mean).sum())


def test_layout_and_meta(imagenet_tree):
    tool, root = imagenet_tree
    names = tool.class_names(4)
    # The first 4 catalogue pairs, sorted: label = sorted position.
    assert names == ['blue_triangle', 'green_square', 'red_circle', 'yellow_star']
    with open(osp.join(root, 'meta', 'classes.txt')) as f:
        assert f.read().split() == names
    with open(osp.join(root, 'meta', 'train.txt')) as f:
        lines = [line.split() for line in f]
    assert len(lines) == 12
    assert lines[4] == ['green_square/green_square_00001.JPEG', '1']
    assert all(osp.isfile(osp.join(root, 'train', p)) for p, _ in lines)


@pytest.mark.parametrize('split,num', [('train', 12), ('val', 8)])
def test_mmpretrain_imagenet_loads(imagenet_tree, split, num):
    from mmengine.registry import DefaultScope
    from mmpretrain.datasets import ImageNet
    tool, root = imagenet_tree
    names = tool.class_names(4)
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # the pipeline names mmpretrain transforms
        ds = ImageNet(
            data_root=root,
            ann_file=f'meta/{split}.txt',
            data_prefix=split,
            metainfo=dict(classes=names),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    assert len(ds) == num
    assert list(ds.metainfo['classes']) == names
    labels = [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
    per_class = num // 4
    assert labels == [k for k in range(4) for _ in range(per_class)]
    # Through the dataset's own pipeline: a 32x32 image whose object has the class colour.
    for i in (0, len(ds) - 1):
        sample = ds[i]
        img = sample['inputs'].numpy().transpose(1, 2, 0)[..., ::-1]  # CHW BGR -> HWC RGB
        assert img.shape == (32, 32, 3)
        assert _object_color(img) == names[sample['data_samples'].gt_label.item()].split('_')[0]


def test_custom_dataset_folder_scan_agrees(imagenet_tree):
    """Without ann_file, mmpretrain scans train/<class>/ and must give the same labels."""
    from mmpretrain.datasets import CustomDataset
    tool, root = imagenet_tree
    scan = CustomDataset(data_root=root, data_prefix='train', with_label=True)
    listed = CustomDataset(
        data_root=root,
        ann_file='meta/train.txt',
        data_prefix='train',
        classes=osp.join(root, 'meta', 'classes.txt'))
    assert list(scan.metainfo['classes']) == tool.class_names(4)
    assert list(listed.metainfo['classes']) == tool.class_names(4)
    by_path = {d['img_path']: d['gt_label'] for d in scan.load_data_list()}
    assert by_path == {d['img_path']: d['gt_label'] for d in listed.load_data_list()}


def test_pixels_match_drawn_mask(imagenet_tree):
    """Re-drawing image (split=0, label=2, i=1) from its seed gives the mask; JPEG keeps colours."""
    tool, root = imagenet_tree
    names = tool.class_names(4)
    catalogue = [tuple(n.split('_', 1)) for n in names]
    rng = np.random.default_rng([3, 0, 2, 1])
    drawn, (inst, ) = random_scene(rng, 32, 32, catalogue, labels=[2], radius_range=(0.28, 0.42))
    path = osp.join(root, 'train', names[2], f'{names[2]}_00001.JPEG')
    img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(float)
    assert inst.label == 2 and inst.area > 0.15 * 32 * 32  # large object
    inner = cv2.erode(inst.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    np.testing.assert_allclose(img[inner].mean(0), COLORS['red'], atol=12)
    assert np.abs(img - drawn).mean() < 10  # JPEG (4:2:0 chroma) of the drawn, noisy array


def test_determinism(imagenet_tree, tmp_path, digest):
    tool, root = imagenet_tree
    tool.main(['--out', str(tmp_path / 'same'), '--seed', '3'] + ARGS)
    tool.main(['--out', str(tmp_path / 'other'), '--seed', '4'] + ARGS)
    ref, same, other = digest(root), digest(tmp_path / 'same'), digest(tmp_path / 'other')
    assert same == ref
    assert other.keys() == ref.keys()
    images = [k for k in ref if k.endswith('.JPEG')]
    assert all(other[k] != ref[k] for k in images)


def test_cli_and_bad_args(tmp_path, toy_tool, repo_root):
    out = tmp_path / 'cli'
    res = subprocess.run([
        sys.executable, 'tools/dataset_converters/make_toy_imagenet.py', '--out',
        str(out), '--num-classes', '2', '--per-class', '1', '--val-per-class', '1'
    ],
                         cwd=repo_root,
                         capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert '2 classes, 2 train / 2 val images of 32x32' in res.stdout
    tool = toy_tool('make_toy_imagenet')
    with pytest.raises(ValueError, match='--size must be >= 16'):
        tool.parse_args(['--size', '8'])
    with pytest.raises(ValueError, match=r'num_classes must be in \[1, 64\]'):
        tool.generate(str(tmp_path / 'x'), 65, 1, 1, 32, 0)


def test_colors_option_makes_classes_share_colours(tmp_path, toy_tool):
    """--colors K: classes use only K colours, so shape alone separates classes of one colour."""
    tool = toy_tool('make_toy_imagenet')
    names = tool.class_names(8, colors=2)
    assert len(set(names)) == 8
    assert {n.split('_')[0] for n in names} == {'red', 'green'}
    assert sorted(n.split('_', 1)[1] for n in names) == sorted(
        ('circle', 'square', 'triangle', 'star', 'cross', 'hexagon', 'pentagon', 'semicircle'))
    root = str(tmp_path / 'toy')
    tool.main([
        '--out', root, '--num-classes', '8', '--per-class', '1', '--val-per-class', '1', '--size', '32',
        '--colors', '2', '--seed', '0'
    ])
    for name in names:
        img = cv2.imread(osp.join(root, 'train', name, f'{name}_00000.JPEG'))[..., ::-1]
        assert _object_color(img) == name.split('_')[0]
    with pytest.raises(ValueError, match='--num-classes must be at most 8 with --colors 1'):
        tool.parse_args(['--num-classes', '9', '--colors', '1'])
    with pytest.raises(ValueError, match='colors'):
        tool.parse_args(['--colors', '9'])

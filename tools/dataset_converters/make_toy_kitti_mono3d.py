"""Write a procedurally rendered KITTI-style monocular 3D detection set.

Flat-shaded 3D boxes (Pedestrian red, Cyclist green, Car blue; the heading face tinted white) stand
on the ground in front of a level pinhole camera. Every object is untruncated, unoccluded and at
least 25 px high. Layout (mmdet3d 1.x info format v1.1, loaded by ``KittiDataset`` with
``load_type='fov_image_based'``, see docs/data.md)::

    <out>/training/image_2/000000.png ...     train images first, then val images
    <out>/ImageSets/{train,val}.txt           6-digit image ids per split
    <out>/kitti_infos_train.pkl
    <out>/kitti_infos_val.pkl

Each pkl is ``dict(metainfo=..., data_list=[...])``. ``data_list[i]`` has:

- ``sample_idx = i``, the list position, which KittiMetric relies on;
- ``images.CAM2``: ``img_path``, ``height``, ``width``, 4x4 ``cam2img``, identity ``lidar2cam``,
  ``lidar2img``;
- ``cam_instances.CAM2`` (training targets): ``bbox``, ``bbox_label``, ``bbox_3d`` =
  ``[x, y, z, l, h, w, ry]`` (camera frame, bottom centre), ``bbox_label_3d``, ``center_2d`` (the
  projection of the gravity centre) and ``depth``;
- ``instances``: the same boxes plus ``truncated``, ``occluded``, ``alpha``, ``score`` and
  ``difficulty`` for KittiMetric.

Example::

    python tools/dataset_converters/make_toy_kitti_mono3d.py --out data/toy_kitti \
        --num-train 32 --num-val 8
"""
import argparse
import math
import os
import os.path as osp
import pickle
import shutil
import sys
from typing import Optional, Sequence, Tuple

import numpy as np

try:
    from mmsparse.datasets.toy import check_ranges, make_cam2img, random_mono3d_scene, write_image
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    from mmsparse.datasets.toy import check_ranges, make_cam2img, random_mono3d_scene, write_image

# Order of mmdet3d's KittiDataset.METAINFO['classes'] (and KittiMetric's defaults): label = index.
CLASSES = ('Pedestrian', 'Cyclist', 'Car')
IMAGE_DIR = osp.join('training', 'image_2')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate a toy KITTI-style mono-3D dataset.')
    parser.add_argument('--out', default='data/toy_kitti', help='output root')
    parser.add_argument('--num-train', type=int, default=32, help='training images')
    parser.add_argument('--num-val', type=int, default=8, help='validation images')
    parser.add_argument('--width', type=int, default=480, help='image width in pixels (>= 160)')
    parser.add_argument('--height', type=int, default=160, help='image height in pixels (>= 96)')
    parser.add_argument('--focal', type=float, default=400.0, help='fx = fy in pixels (> 0)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0)')
    parser.add_argument(
        '--classes', nargs='+', default=list(CLASSES), help=f'classes drawn, among {" ".join(CLASSES)}')
    parser.add_argument(
        '--num-objects', type=int, nargs=2, default=(1, 3), metavar=('MIN', 'MAX'), help='objects per image')
    parser.add_argument(
        '--depth-range',
        type=float,
        nargs=2,
        default=(7.0, 25.0),
        metavar=('NEAR', 'FAR'),
        help='bottom-centre depth z in metres')
    parser.add_argument(
        '--yaw-spread',
        type=float,
        default=None,
        help='degrees in [0, 90]: heading along the optical axis (towards or away), turned by up to this '
        'much; default: any heading')
    parser.add_argument(
        '--size-jitter',
        type=float,
        default=0.08,
        help='relative spread of each box size around its class\'s typical size, in [0, 0.5)')
    args = parser.parse_args(argv)
    check_ranges(
        args,
        dict(num_train=(1, None), num_val=(1, None), width=(160, None), height=(96, None), seed=(0, None)))
    if not args.focal > 0:
        raise ValueError(f'--focal must be > 0, got {args.focal}')
    unknown = [c for c in args.classes if c not in CLASSES]
    if unknown or len(set(args.classes)) != len(args.classes):
        raise ValueError(f'--classes must be distinct names among {CLASSES}, got {args.classes}')
    if not 1 <= args.num_objects[0] <= args.num_objects[1]:
        raise ValueError(f'--num-objects must satisfy 1 <= MIN <= MAX, got {list(args.num_objects)}')
    if not 0 < args.depth_range[0] < args.depth_range[1]:
        raise ValueError(f'--depth-range must satisfy 0 < NEAR < FAR, got {list(args.depth_range)}')
    if args.yaw_spread is not None and not 0 <= args.yaw_spread <= 90:
        raise ValueError(f'--yaw-spread must be in [0, 90] degrees, got {args.yaw_spread}')
    if not 0 <= args.size_jitter < 0.5:
        raise ValueError(f'--size-jitter must be in [0, 0.5), got {args.size_jitter}')
    return args


def kitti_difficulty(height_px: float, occluded: int = 0, truncated: float = 0.0) -> int:
    """KITTI difficulty: 0 easy, 1 moderate, 2 hard, -1 ignored (height in pixels)."""
    for level, (min_h, max_occ, max_trunc) in enumerate(((40, 0, 0.15), (25, 1, 0.3), (25, 2, 0.5))):
        if height_px >= min_h and occluded <= max_occ and truncated <= max_trunc:
            return level
    return -1


def _instance_dicts(inst):
    """``(cam_instance, instance)`` info dicts for one :class:`Box3DInstance`."""
    cam = dict(
        bbox=inst.bbox.tolist(),
        bbox_label=inst.label,
        bbox_3d=inst.box.tolist(),
        bbox_label_3d=inst.label,
        center_2d=inst.center_2d.tolist(),
        depth=inst.depth)
    full = dict(
        cam,
        truncated=0.0,
        occluded=0,
        alpha=inst.alpha,
        score=0.0,
        difficulty=kitti_difficulty(inst.bbox[3] - inst.bbox[1]))
    return cam, full


def generate(out: str,
             num_train: int,
             num_val: int,
             width: int,
             height: int,
             focal: float,
             seed: int,
             classes: Sequence[str] = CLASSES,
             num_objects: Tuple[int, int] = (1, 3),
             depth_range: Tuple[float, float] = (7.0, 25.0),
             yaw_spread_deg: Optional[float] = None,
             size_jitter: float = 0.08) -> dict:
    """Write images and info pkls; return ``{'train': (images, boxes), 'val': (images, boxes)}``.

    ``classes`` are the ones drawn (labels stay indices into :data:`CLASSES`, the dataset's classes);
    the other arguments are those of :func:`random_mono3d_scene` (``yaw_spread_deg`` in degrees).
    """
    cam2img = make_cam2img(width, height, focal)
    # None keeps the original draw (and thus the original scenes for a seed) when every class is drawn
    labels = None if tuple(classes) == CLASSES else [CLASSES.index(c) for c in classes]
    yaw_spread = None if yaw_spread_deg is None else math.radians(yaw_spread_deg)
    for sub in (IMAGE_DIR, 'ImageSets'):  # replace only what this generator owns
        shutil.rmtree(osp.join(out, sub), ignore_errors=True)
    os.makedirs(osp.join(out, 'ImageSets'))
    counts, first = {}, 0
    for split_id, (split, n) in enumerate((('train', num_train), ('val', num_val))):
        data_list = []
        for i in range(n):
            rng = np.random.default_rng([seed, split_id, i])
            image, instances = random_mono3d_scene(
                rng,
                width,
                height,
                cam2img,
                CLASSES,
                num_objects=tuple(num_objects),
                depth_range=tuple(depth_range),
                labels=labels,
                yaw_spread=yaw_spread,
                size_jitter=size_jitter)
            name = f'{first + i:06d}.png'
            write_image(osp.join(out, IMAGE_DIR, name), image)
            pairs = [_instance_dicts(inst) for inst in instances]
            data_list.append(
                dict(
                    sample_idx=i,
                    images=dict(
                        CAM2=dict(
                            img_path=name,
                            height=height,
                            width=width,
                            cam2img=cam2img.tolist(),
                            lidar2cam=np.eye(4).tolist(),
                            lidar2img=cam2img.tolist())),
                    instances=[full for _, full in pairs],
                    cam_instances=dict(CAM2=[cam for cam, _ in pairs])))
        with open(osp.join(out, 'ImageSets', f'{split}.txt'), 'w') as f:
            f.writelines(f'{first + i:06d}\n' for i in range(n))
        infos = dict(
            metainfo=dict(
                categories={
                    c: k
                    for k, c in enumerate(CLASSES)
                }, dataset='kitti', info_version='1.1'),
            data_list=data_list)
        with open(osp.join(out, f'kitti_infos_{split}.pkl'), 'wb') as f:
            pickle.dump(infos, f, protocol=4)
        counts[split] = (n, sum(len(d['instances']) for d in data_list))
        first += n
    return counts


def main(argv=None):
    args = parse_args(argv)
    counts = generate(args.out, args.num_train, args.num_val, args.width, args.height, args.focal, args.seed,
                      args.classes, args.num_objects, args.depth_range, args.yaw_spread, args.size_jitter)
    print(f'toy kitti mono3d: classes {CLASSES}; (images, boxes) train {counts["train"]}, '
          f'val {counts["val"]}; {args.width}x{args.height}, f={args.focal:g} -> {args.out}')


if __name__ == '__main__':
    main()

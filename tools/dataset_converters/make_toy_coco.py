"""Write a procedurally drawn COCO-style instance segmentation set.

Each category is one shape in one fixed colour (``circle`` red, ``square`` green, ``triangle`` blue,
``star`` yellow), 1-4 non-overlapping instances per image, so Mask R-CNN learns it on CPU. Layout
(loaded by mmdet's ``CocoDataset`` with ``metainfo=dict(classes=...)``, see docs/data.md)::

    <out>/train2017/000000000001.jpg ...
    <out>/val2017/000000000001.jpg ...
    <out>/annotations/instances_train2017.json
    <out>/annotations/instances_val2017.json

Annotations carry one polygon ``segmentation`` per instance (COCO pixel coordinates), ``area`` = the
number of painted pixels, ``bbox`` = ``[x, y, w, h]`` of the polygon and ``iscrowd = 0``. Image ids
start at 1 in each split. Each image is drawn from its own stream seeded by
``(seed, split, index)``.

Example::

    python tools/dataset_converters/make_toy_coco.py --out data/toy_coco --num-train 64 --num-val 16
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np

try:
    from mmsparse.datasets.toy import check_ranges, class_catalogue, random_scene, write_image
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    from mmsparse.datasets.toy import check_ranges, class_catalogue, random_scene, write_image

SPLITS = ('train2017', 'val2017')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate a toy COCO-style dataset.')
    parser.add_argument('--out', default='data/toy_coco', help='output root')
    parser.add_argument('--num-train', type=int, default=64, help='training images')
    parser.add_argument('--num-val', type=int, default=16, help='validation images')
    parser.add_argument('--size', type=int, default=128, help='square image side in pixels (>= 32)')
    parser.add_argument('--num-classes', type=int, default=3, help='categories, 2..4')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0)')
    args = parser.parse_args(argv)
    check_ranges(
        args,
        dict(num_train=(1, None), num_val=(1, None), size=(32, None), num_classes=(2, 4), seed=(0, None)))
    return args


def categories(num_classes: int):
    """``(colour, shape)`` per class and the COCO category list (ids from 1, named by shape)."""
    catalogue = class_catalogue(num_classes)
    cats = [dict(id=i + 1, name=shape, supercategory='shape') for i, (_, shape) in enumerate(catalogue)]
    return catalogue, cats


def _split_json(out, split, split_id, num_images, size, catalogue, cats, seed):
    """Draw and write one split's images; return its COCO dict."""
    images, annotations = [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, split_id, i])
        image, instances = random_scene(
            rng, size, size, catalogue, num_objects=(1, 4), radius_range=(0.1, 0.22))
        image_id = i + 1
        file_name = f'{image_id:012d}.jpg'
        write_image(osp.join(out, split, file_name), image)
        images.append(dict(id=image_id, file_name=file_name, height=size, width=size))
        for inst in instances:
            x1, y1, x2, y2 = inst.bbox_xyxy
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=inst.label + 1,
                    segmentation=[np.round(inst.polygon, 2).ravel().tolist()],
                    area=float(inst.area),
                    bbox=[round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                    iscrowd=0))
    return dict(
        info=dict(description=f'mmsparse toy COCO {split}, seed {seed}'),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=cats)


def generate(out: str, num_train: int, num_val: int, size: int, num_classes: int, seed: int) -> dict:
    """Write the dataset; return ``{'classes': [...], '<split>': (images, instances)}``."""
    catalogue, cats = categories(num_classes)
    for sub in SPLITS + ('annotations', ):  # replace only what this generator owns
        shutil.rmtree(osp.join(out, sub), ignore_errors=True)
    os.makedirs(osp.join(out, 'annotations'))
    info = dict(classes=[c['name'] for c in cats])
    for split_id, (split, n) in enumerate(zip(SPLITS, (num_train, num_val))):
        coco = _split_json(out, split, split_id, n, size, catalogue, cats, seed)
        with open(osp.join(out, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
        info[split] = (len(coco['images']), len(coco['annotations']))
    return info


def main(argv=None):
    args = parse_args(argv)
    info = generate(args.out, args.num_train, args.num_val, args.size, args.num_classes, args.seed)
    print(f'toy coco: classes {tuple(info["classes"])}; (images, instances) '
          f'train {info[SPLITS[0]]}, val {info[SPLITS[1]]} -> {args.out}')


if __name__ == '__main__':
    main()

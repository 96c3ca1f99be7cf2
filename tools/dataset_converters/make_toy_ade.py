"""Write a procedurally drawn ADE20K-style semantic segmentation set.

Scenes of non-overlapping coloured shapes (one fixed colour per shape class) on a dark background.
Layout (ADE20K's, loaded by mmseg's ``ADE20KDataset`` or ``BaseSegDataset``, see docs/data.md)::

    <out>/images/training/ADE_train_00000000.jpg
    <out>/images/validation/ADE_val_00000000.jpg
    <out>/annotations/training/ADE_train_00000000.png      uint8 label maps
    <out>/annotations/validation/ADE_val_00000000.png

Label values follow ADE20K: 0 is reserved for "ignore" (never written here), ``1`` is the background
and ``2 .. K+1`` are the shape classes, so with ``reduce_zero_label=True`` the model sees classes
``0 .. K`` = ``('background', 'circle', 'square', ...)``. Each image is drawn from its own stream
seeded by ``(seed, split, index)``.

Example::

    python tools/dataset_converters/make_toy_ade.py --out data/toy_ade --num-train 64 --num-val 16
"""
import argparse
import os.path as osp
import shutil
import sys

import numpy as np

try:
    from mmsparse.datasets.toy import check_ranges, class_catalogue, random_scene, write_image
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    from mmsparse.datasets.toy import check_ranges, class_catalogue, random_scene, write_image

SPLITS = (('training', 'train'), ('validation', 'val'))
BACKGROUND = 1  # label value of the background; 0 stays ADE's "ignore"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate a toy ADE20K-style dataset.')
    parser.add_argument('--out', default='data/toy_ade', help='output root')
    parser.add_argument('--num-train', type=int, default=64, help='training images')
    parser.add_argument('--num-val', type=int, default=16, help='validation images')
    parser.add_argument('--size', type=int, default=128, help='square image side in pixels (>= 32)')
    parser.add_argument('--num-classes', type=int, default=3, help='shape classes, 1..8')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0)')
    args = parser.parse_args(argv)
    check_ranges(
        args,
        dict(num_train=(1, None), num_val=(1, None), size=(32, None), num_classes=(1, 8), seed=(0, None)))
    return args


def class_names(num_classes: int):
    """Class names after ``reduce_zero_label``: ``('background', <shape>, ...)``."""
    return ('background', ) + tuple(shape for _, shape in class_catalogue(num_classes))


def label_map(instances, height: int, width: int) -> np.ndarray:
    """``(H, W)`` uint8 ADE label map: background 1, instance of class c -> c + 2."""
    seg = np.full((height, width), BACKGROUND, np.uint8)
    for inst in instances:
        seg[inst.mask] = inst.label + BACKGROUND + 1
    return seg


def generate(out: str, num_train: int, num_val: int, size: int, num_classes: int, seed: int) -> dict:
    """Write the dataset; return ``{'classes': (...), 'training': n, 'validation': n}``."""
    catalogue = class_catalogue(num_classes)
    for sub in ('images', 'annotations'):  # replace only what this generator owns
        for split, _ in SPLITS:
            shutil.rmtree(osp.join(out, sub, split), ignore_errors=True)
    info = dict(classes=class_names(num_classes))
    for split_id, ((split, tag), n) in enumerate(zip(SPLITS, (num_train, num_val))):
        for i in range(n):
            rng = np.random.default_rng([seed, split_id, i])
            image, instances = random_scene(
                rng, size, size, catalogue, num_objects=(1, 4), radius_range=(0.1, 0.25))
            stem = f'ADE_{tag}_{i:08d}'
            write_image(osp.join(out, 'images', split, stem + '.jpg'), image)
            write_image(osp.join(out, 'annotations', split, stem + '.png'), label_map(instances, size, size))
        info[split] = n
    return info


def main(argv=None):
    args = parse_args(argv)
    info = generate(args.out, args.num_train, args.num_val, args.size, args.num_classes, args.seed)
    print(f'toy ade: classes {info["classes"]} (after reduce_zero_label); '
          f'{info["training"]} train / {info["validation"]} val images -> {args.out}')


if __name__ == '__main__':
    main()

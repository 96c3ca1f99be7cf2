"""Write a procedurally drawn ImageNet-style classification set.

Each class is one (colour, shape) pair drawn large on a dark background, so a small CNN learns it in
minutes on CPU. ``--colors K`` paints the classes with only the first K colours (class ``c`` gets colour
``(c // 8 + c) % K``), so classes that share a colour differ in shape alone (with ``--colors 1`` only the
outline tells a hexagon from a circle) and accuracy trades against compute; the demo uses
``--colors 6``. Layout (loaded by mmpretrain's ``ImageNet`` / ``CustomDataset``, see docs/data.md)::

    <out>/train/<class>/<class>_00000.JPEG
    <out>/val/<class>/<class>_00000.JPEG
    <out>/meta/train.txt     "<class>/<file>.JPEG <label>" per line, relative to train/
    <out>/meta/val.txt       same, relative to val/
    <out>/meta/classes.txt   one class name per line, in label order

Class names are ``<colour>_<shape>`` and labels follow their sorted order, so mmpretrain's folder
scan (no ``ann_file``) assigns the same labels as ``meta/*.txt``. Every image has its own random
stream seeded by ``(seed, split, class, index)``: the same ``--seed`` gives identical bytes, and
raising ``--per-class`` only adds images.

Example::

    python tools/dataset_converters/make_toy_imagenet.py --out data/toy_imagenet \
        --num-classes 8 --per-class 50 --size 32
"""
import argparse
import os
import os.path as osp
import shutil
import sys

import numpy as np

try:
    from mmsparse.datasets.toy import COLORS, SHAPES, check_ranges, class_catalogue, random_scene, write_image
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    from mmsparse.datasets.toy import COLORS, SHAPES, check_ranges, class_catalogue, random_scene, write_image

SPLITS = ('train', 'val')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate a toy ImageNet-style dataset.')
    parser.add_argument('--out', default='data/toy_imagenet', help='output root')
    parser.add_argument('--num-classes', type=int, default=8, help='1..64 (colour, shape) classes')
    parser.add_argument('--per-class', type=int, default=50, help='training images per class')
    parser.add_argument('--val-per-class', type=int, default=10, help='validation images per class')
    parser.add_argument('--size', type=int, default=32, help='square image side in pixels (>= 16)')
    parser.add_argument(
        '--colors',
        type=int,
        default=0,
        help='distinct colours, 1..8 (0: one colour per shape as in the catalogue)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0)')
    args = parser.parse_args(argv)
    check_ranges(
        args,
        dict(
            num_classes=(1, 64),
            per_class=(1, None),
            val_per_class=(1, None),
            size=(16, None),
            colors=(0, len(COLORS)),
            seed=(0, None)))
    if args.colors and args.num_classes > len(SHAPES) * args.colors:
        raise ValueError(f'--num-classes must be at most {len(SHAPES) * args.colors} with --colors '
                         f'{args.colors} (each class a distinct (colour, shape) pair), '
                         f'got {args.num_classes}')
    return args


def class_names(num_classes: int, colors: int = 0):
    """Sorted ``<colour>_<shape>`` names; a name's position is its label.

    ``colors=0``: the catalogue's pairs. ``colors=K``: class ``c`` is shape ``c % 8`` in colour
    ``(c // 8 + c) % K`` of the first K colours.
    """
    if not colors:
        return sorted(f'{color}_{shape}' for color, shape in class_catalogue(num_classes))
    palette = list(COLORS)[:colors]
    return sorted(f'{palette[(c // len(SHAPES) + c) % colors]}_{SHAPES[c % len(SHAPES)]}'
                  for c in range(num_classes))


def generate(out: str,
             num_classes: int,
             per_class: int,
             val_per_class: int,
             size: int,
             seed: int,
             colors: int = 0) -> dict:
    """Write the dataset; return ``{'classes': [...], 'train': n, 'val': n}``."""
    names = class_names(num_classes, colors)
    catalogue = [tuple(name.split('_', 1)) for name in names]  # label -> (colour, shape)
    for sub in SPLITS + ('meta', ):  # replace only what this generator owns
        shutil.rmtree(osp.join(out, sub), ignore_errors=True)
    counts = {}
    for split_id, (split, n) in enumerate(zip(SPLITS, (per_class, val_per_class))):
        lines = []
        for label, name in enumerate(names):
            for i in range(n):
                rng = np.random.default_rng([seed, split_id, label, i])
                image, _ = random_scene(rng, size, size, catalogue, labels=[label], radius_range=(0.28, 0.42))
                rel = f'{name}/{name}_{i:05d}.JPEG'
                write_image(osp.join(out, split, rel), image)
                lines.append(f'{rel} {label}\n')
        with open(_meta_path(out, f'{split}.txt'), 'w') as f:
            f.writelines(lines)
        counts[split] = len(lines)
    with open(_meta_path(out, 'classes.txt'), 'w') as f:
        f.writelines(f'{name}\n' for name in names)
    return dict(classes=names, **counts)


def _meta_path(out: str, name: str) -> str:
    path = osp.join(out, 'meta', name)
    os.makedirs(osp.dirname(path), exist_ok=True)
    return path


def main(argv=None):
    args = parse_args(argv)
    info = generate(args.out, args.num_classes, args.per_class, args.val_per_class, args.size, args.seed,
                    args.colors)
    print(f'toy imagenet: {len(info["classes"])} classes, {info["train"]} train / {info["val"]} '
          f'val images of {args.size}x{args.size} -> {args.out}')


if __name__ == '__main__':
    main()

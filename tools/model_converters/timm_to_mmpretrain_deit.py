"""Convert a timm DeiT checkpoint (plain or distilled) to mmpretrain / mmsparse key names.

Usage:
    python tools/model_converters/timm_to_mmpretrain_deit.py SRC DST

SRC is a timm / official DeiT file (weights at the top level or under ``model``); DST gets
``{'state_dict': ...}`` with ``backbone.`` / ``head.layers.`` keys, loadable by an mmpretrain
``ImageClassifier`` with ``VisionTransformer`` / ``DistilledVisionTransformer`` or by
``mmsparse.SparseDeiT`` / ``SparseDistilledDeiT`` (key table: ``_RULES`` and ``_BLOCK_RULES`` below).
"""
import argparse
import os.path as osp
from collections import OrderedDict
from typing import Dict

import torch

# (timm prefix, mmpretrain prefix), first match wins
_RULES = (
    ('cls_token', 'backbone.cls_token'),
    ('dist_token', 'backbone.dist_token'),
    ('pos_embed', 'backbone.pos_embed'),
    ('patch_embed.proj.', 'backbone.patch_embed.projection.'),
    ('norm.', 'backbone.ln1.'),
    ('head_dist.', 'head.layers.head_dist.'),
    ('head.', 'head.layers.head.'),
)
_BLOCK_RULES = (
    ('norm1.', 'ln1.'),
    ('norm2.', 'ln2.'),
    ('attn.qkv.', 'attn.qkv.'),
    ('attn.proj.', 'attn.proj.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
)


def convert_key(key: str) -> str:
    """One timm key -> its mmpretrain key; raises ``KeyError`` for keys with no mapping."""
    if key.startswith('blocks.'):
        _, idx, rest = key.split('.', 2)
        for old, new in _BLOCK_RULES:
            if rest.startswith(old):
                return f'backbone.layers.{idx}.{new}{rest[len(old):]}'
        raise KeyError(f'unknown timm DeiT block key {key!r}')
    for old, new in _RULES:
        if key == old or (old.endswith('.') and key.startswith(old)):
            return new + key[len(old):]
    raise KeyError(f'unknown timm DeiT key {key!r}')


def convert_timm_deit(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename every key of a timm DeiT state dict; tensors are shared, not copied."""
    if 'model' in state_dict and isinstance(state_dict['model'], dict):
        state_dict = state_dict['model']
    return OrderedDict((convert_key(k), v) for k, v in state_dict.items())


def main():
    parser = argparse.ArgumentParser(description='Convert timm DeiT weights to mmpretrain names')
    parser.add_argument('src', help='timm / official DeiT checkpoint')
    parser.add_argument('dst', help='output path (.pth)')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'no checkpoint at {args.src}')
    # a foreign checkpoint: load tensors only
    ckpt = torch.load(args.src, map_location='cpu', weights_only=True)
    converted = convert_timm_deit(ckpt)
    torch.save({'state_dict': converted}, args.dst)
    print(f'converted {len(converted)} tensors -> {args.dst}')


if __name__ == '__main__':
    main()

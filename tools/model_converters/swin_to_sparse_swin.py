"""Convert Swin checkpoints to ``mmsparse.SparseSwin`` keys (= mmdet's ``SwinTransformer`` keys).

Usage:
    python tools/model_converters/swin_to_sparse_swin.py SRC DST --format official|mmpretrain|sparsevit
        [--ratios JSON] [--backbone-only]

Formats:
* ``official``: microsoft/Swin-Transformer ``swin_*_patch4_window7_224.pth`` (``layers.{s}.blocks.{b}.
  attn.qkv``, ``mlp.fc1``, ``downsample.reduction`` in the official 2x2 concat order, ``patch_embed.proj``,
  final ``norm``, ``head``). PatchMerging weights are re-ordered to mmdet's ``nn.Unfold`` channel order;
  the classification head, the final norm and the ``attn_mask`` buffers are dropped.
* ``mmpretrain``: an mmpretrain ``ImageClassifier`` with ``SwinTransformer`` (same module names as mmdet;
  only the ``backbone.`` prefix and the head go away).
* ``sparsevit``: the reference SparseViT (mmdet 2.x fork) detector checkpoint; its backbone already has
  mmdet's keys, so the whole detector state dict is kept and only optional ratios are recorded.

DST holds ``{'state_dict': ...}``; with ``--backbone-only`` the keys carry no ``backbone.`` prefix
(loadable by ``SparseSwin.load_state_dict``), otherwise they do (loadable by a detector/segmentor).
"""
import argparse
import json
from collections import OrderedDict
from typing import Dict, Optional

import torch

Tensor = torch.Tensor
# official 2x2 concat order (x00, x10, x01, x11) vs nn.Unfold's row-major kernel order (x00, x01, x10, x11)
_UNFOLD_FROM_OFFICIAL = (0, 2, 1, 3)


def merge_weight_official_to_unfold(w: Tensor) -> Tensor:
    """``(out, 4C)`` reduction weight: official ``[quadrant * C + c]`` -> unfold ``[c * 4 + position]``."""
    out, four_c = w.shape
    return w.reshape(out, 4, four_c // 4)[:, list(_UNFOLD_FROM_OFFICIAL)].transpose(1, 2).reshape(out, four_c)


def merge_weight_unfold_to_official(w: Tensor) -> Tensor:
    """Inverse of :func:`merge_weight_official_to_unfold`."""
    out, four_c = w.shape
    return w.reshape(out, four_c // 4, 4).transpose(1, 2)[:, list(_UNFOLD_FROM_OFFICIAL)].reshape(out, four_c)


def merge_norm_official_to_unfold(v: Tensor) -> Tensor:
    """``(4C,)`` merge-norm parameter, same re-ordering as the reduction weight's input channels."""
    return merge_weight_official_to_unfold(v[None])[0]


def merge_norm_unfold_to_official(v: Tensor) -> Tensor:
    return merge_weight_unfold_to_official(v[None])[0]


_OFFICIAL_BLOCK_RULES = (  # (official, ours) inside layers.{s}.blocks.{b}.
    ('attn.', 'attn.w_msa.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
    ('norm1.', 'norm1.'),
    ('norm2.', 'norm2.'),
)


def official_to_ours(state: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Official Swin ImageNet weights -> SparseSwin backbone keys (no prefix)."""
    if isinstance(state.get('model'), dict):
        state = state['model']
    out = OrderedDict()
    for key, v in state.items():
        if key.startswith('head.') or key.startswith('norm.') or key.endswith('attn_mask'):
            continue  # classifier, final norm and the dense SW mask buffers have no counterpart
        if key.startswith('patch_embed.proj.'):
            out['patch_embed.projection.' + key[len('patch_embed.proj.'):]] = v
        elif key.startswith('patch_embed.norm.'):
            out[key] = v
        elif key.startswith('layers.'):
            _, s, rest = key.split('.', 2)
            if rest.startswith('blocks.'):
                _, b, inner = rest.split('.', 2)
                new = next((n + inner[len(o):] for o, n in _OFFICIAL_BLOCK_RULES if inner.startswith(o)),
                           None)
                if new is None:
                    raise KeyError(f'unknown official Swin block key {key!r}')
                out[f'stages.{s}.blocks.{b}.{new}'] = v
            elif rest.startswith('downsample.reduction.'):
                out[f'stages.{s}.{rest}'] = merge_weight_official_to_unfold(v)
            elif rest.startswith('downsample.norm.'):
                out[f'stages.{s}.{rest}'] = merge_norm_official_to_unfold(v)
            else:
                raise KeyError(f'unknown official Swin key {key!r}')
        elif key == 'absolute_pos_embed':
            out[key] = v
        else:
            raise KeyError(f'unknown official Swin key {key!r}')
    return out


def ours_to_official(state: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Inverse of :func:`official_to_ours` on the keys both layouts share (used by tests and exports)."""
    out = OrderedDict()
    for key, v in state.items():
        if key.startswith('norm') and not key.startswith('norm.') or key == 'pruning_ratios':
            continue  # the per-stage output norms norm{s} and the ratio record are ours only
        if key.startswith('patch_embed.projection.'):
            out['patch_embed.proj.' + key[len('patch_embed.projection.'):]] = v
        elif key.startswith('stages.'):
            _, s, rest = key.split('.', 2)
            if rest.startswith('blocks.'):
                _, b, inner = rest.split('.', 2)
                old = next(o + inner[len(n):] for o, n in _OFFICIAL_BLOCK_RULES if inner.startswith(n))
                out[f'layers.{s}.blocks.{b}.{old}'] = v
            elif rest.startswith('downsample.reduction.'):
                out[f'layers.{s}.{rest}'] = merge_weight_unfold_to_official(v)
            else:
                out[f'layers.{s}.{rest}'] = merge_norm_unfold_to_official(v)
        else:
            out[key] = v
    return out


def mmpretrain_to_ours(state: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """mmpretrain Swin classifier -> SparseSwin backbone keys (no prefix); the head is dropped."""
    if isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    out = OrderedDict()
    for key, v in state.items():
        if key.startswith('backbone.'):
            out[key[len('backbone.'):]] = v
        elif not (key.startswith('head.') or key.startswith('neck.') or key.startswith('data_preprocessor.')):
            raise KeyError(f'unknown mmpretrain Swin key {key!r}')
    return out


def sparsevit_to_ours(state: Dict[str, Tensor], ratios=None) -> 'OrderedDict[str, Tensor]':
    """Reference SparseViT detector checkpoint -> mmsparse detector keys (identical names).

    ``ratios`` (per-stage lists) are recorded as ``backbone.pruning_ratios`` so the checkpoint states
    what it was fine-tuned with (the reference stores them only in its config).
    """
    if isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    out = OrderedDict((k, v) for k, v in state.items() if not k.endswith('attn_mask'))
    if ratios is not None:
        out['backbone.pruning_ratios'] = torch.tensor([r for s in ratios for r in s], dtype=torch.float64)
    return out


def convert(state, fmt: str, ratios=None, backbone_only: bool = False):
    """Dispatch on ``fmt``; returns a flat state dict (backbone keys prefixed unless ``backbone_only``)."""
    if fmt == 'sparsevit':
        out = sparsevit_to_ours(state, ratios)
        if backbone_only:
            out = OrderedDict((k[len('backbone.'):], v) for k, v in out.items() if k.startswith('backbone.'))
        return out
    if fmt == 'official':
        out = official_to_ours(state)
    elif fmt == 'mmpretrain':
        out = mmpretrain_to_ours(state)
    else:
        raise ValueError(f"--format must be 'official', 'mmpretrain' or 'sparsevit', got {fmt!r}")
    if ratios is not None:
        out['pruning_ratios'] = torch.tensor([r for s in ratios for r in s], dtype=torch.float64)
    if not backbone_only:
        out = OrderedDict(('backbone.' + k, v) for k, v in out.items())
    return out


def main(argv: Optional[list] = None):
    p = argparse.ArgumentParser(description='Convert Swin weights to mmsparse.SparseSwin keys')
    p.add_argument('src')
    p.add_argument('dst')
    p.add_argument('--format', required=True, choices=('official', 'mmpretrain', 'sparsevit'))
    p.add_argument('--ratios', default=None, help='JSON per-stage ratio lists to record')
    p.add_argument('--backbone-only', action='store_true')
    args = p.parse_args(argv)
    state = torch.load(args.src, map_location='cpu', weights_only=False)
    ratios = json.loads(args.ratios) if args.ratios else None
    out = convert(state, args.format, ratios, args.backbone_only)
    torch.save(dict(state_dict=out), args.dst)
    print(f'{args.src} ({args.format}) -> {args.dst}: {len(out)} tensors')


if __name__ == '__main__':
    main()

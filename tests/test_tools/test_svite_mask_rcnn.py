"""Unstructured SViTE on any backbone: a few Mask R-CNN iterations with SparseSwin on toy COCO."""
import os.path as osp

import pytest
import torch

from mmsparse.sparsity.erk import layer_densities
from tests.tool_runner import REPO_ROOT, coco_options, read_svite_updates, run_tool

BASE = osp.join(REPO_ROOT, 'configs/sparsevit/maskrcnn_swin_t_toy.py')


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('data') / 'toy_coco')
    run_tool([
        'dataset_converters/make_toy_coco.py', '--out', out, '--num-train', '4', '--num-val', '2', '--size',
        '64', '--num-classes', '3', '--seed', '0'
    ])
    return out


def test_mask_rcnn_sparse_swin_trains_with_the_prune_grow_hook(toy_coco, tmp_path):
    config = tmp_path / 'maskrcnn_svite.py'
    config.write_text(
        f"_base_ = '{BASE}'\n"
        "train_dataloader = dict(batch_size=2, dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),\n"
        "    dict(type='Resize', scale=(64, 64), keep_ratio=False), dict(type='PackDetInputs')]))\n"
        "optim_wrapper = dict(type='mmsparse.SViTEOptimWrapper')\n"
        "custom_hooks = [dict(type='mmsparse.PruneGrowHook', density=0.3, delta_t=1, t_end=1.0,\n"
        "                     debug=True)]\n"
        "train_cfg = dict(max_iters=3, val_interval=100)\n"
        "param_scheduler = []\n"
        "default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=100))\n")
    work = str(tmp_path / 'work')
    run_tool(['train.py', str(config), '--work-dir', work, '--cfg-options', *coco_options(toy_coco)])
    updates = read_svite_updates(work)
    assert [u['t'] for u in updates] == [1, 2]  # T_end = T_total = 3
    ckpt = torch.load(osp.join(work, 'iter_3.pth'), map_location='cpu', weights_only=False)
    masks = ckpt['svite']['masker']['masks']
    state = ckpt['state_dict']
    # only backbone weights (default scope): patch embed, qkv / proj / FFN of every block, merges
    assert all(name.startswith('backbone.') for name in masks)
    assert any('.attn.w_msa.qkv.weight' in n for n in masks) and any('downsample' in n for n in masks)
    assert not any('relative_position_bias_table' in n or n.endswith('.bias') for n in masks)
    shapes = {n: tuple(state[n].shape) for n in ckpt['svite']['masker']['densities']}
    target = layer_densities(shapes, 0.3, 'erk')
    for name, mask in masks.items():
        assert int(mask.sum()) == round(target[name] * mask.numel()), name
        assert bool((state[name][~mask] == 0).all()), name  # weights zero where masked
    for u in updates:
        for layer in u['layers'].values():
            assert layer['pruned'] == layer['grown']

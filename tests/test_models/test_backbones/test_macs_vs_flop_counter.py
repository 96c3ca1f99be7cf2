"""The analytic MACs (``mmsparse.sparsity.cost`` / ``vit_cost``) equal what torch's FlopCounterMode
counts on the modules that actually run (FLOPs = 2 x MACs), dense and pruned.

One documented difference: the analytic Swin count runs every block over whole padded windows, while
a block on the dense path (mmdet's own arithmetic) applies its FFN to the unpadded map only. So at an
input whose stage maps pad, the count is lower by the FFN of the padded tokens of dense-path blocks
(``tests.counted_macs.dense_path_padded_ffn_macs``); at 672x672 nothing pads for Swin-T and the two
agree exactly.
"""
import math

import pytest
import torch

from mmsparse.models import SparseSwin
from mmsparse.sparsity.cost import swin_macs
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS
from mmsparse.sparsity.vit_cost import vit_cost
from mmsparse.sparsity.window_selection import stage_hw
from tests.counted_macs import counted_macs, dense_path_padded_ffn_macs
from tests.tiny_models import TINY_SWIN_T as TINY

CFG2 = PUBLISHED_RATIOS['cfg2']


@pytest.mark.parametrize('ratios', [None, CFG2, 0.5, [[.9, .9], [.5, .7], [.3] * 6, [.5, .5]]])
@pytest.mark.parametrize('fused', [False, True])
def test_swin_macs_equal_the_counted_macs_of_the_executed_backbone(ratios, fused):
    # 200x232: stage maps 50x58 / 25x29 / 13x15 / 7x8 pad at every stage (window 7)
    model = SparseSwin(pruning_ratios=ratios, fused_attention=fused, **TINY)
    shape = (200, 232)
    block_ratios = model.get_pruning_ratios()
    expected = swin_macs(shape, block_ratios, embed_dims=TINY['embed_dims'], depths=TINY['depths'])
    padded_ffn = dense_path_padded_ffn_macs(shape, block_ratios, embed_dims=TINY['embed_dims'])
    assert counted_macs(model, torch.randn(1, 3, *shape)) == expected - padded_ffn


@pytest.mark.parametrize('ratios', [None, CFG2])
def test_swin_macs_equal_the_counted_macs_exactly_where_nothing_pads(ratios):
    model = SparseSwin(pruning_ratios=ratios, **TINY)
    shape = (224, 224)  # stage maps 56 / 28 / 14 / 7: multiples of the window
    assert all(math.prod(stage_hw(shape, s)) % 7 == 0 for s in range(4))
    expected = swin_macs(
        shape, model.get_pruning_ratios(), embed_dims=TINY['embed_dims'], depths=TINY['depths'])
    assert counted_macs(model, torch.randn(1, 3, *shape)) == expected


def test_swin_macs_scale_with_the_batch():
    model = SparseSwin(pruning_ratios=CFG2, **TINY)
    expected = swin_macs((224, 224), CFG2, batch=3, embed_dims=TINY['embed_dims'], depths=TINY['depths'])
    assert counted_macs(model, torch.randn(3, 3, 224, 224)) == expected


@pytest.mark.parametrize('num_tokens', [None, 9])
def test_vit_cost_equals_the_counted_macs_of_the_executed_sparse_deit(num_tokens):
    from mmsparse.models import SparseDeiT
    arch = dict(embed_dims=128, num_layers=2, num_heads=2, feedforward_channels=256)
    selector = None if num_tokens is None else dict(num_tokens=num_tokens)
    model = SparseDeiT(arch=arch, img_size=32, patch_size=8, token_selector=selector)
    expected = vit_cost(**arch, img_size=32, patch_size=8, num_classes=0, num_tokens=num_tokens)
    assert counted_macs(model, torch.randn(1, 3, 32, 32)) == expected['macs']

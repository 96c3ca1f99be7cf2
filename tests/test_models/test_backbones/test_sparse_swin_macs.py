"""``SparseSwin.macs``: the analytic MACs with the backbone's own architecture, never Swin-T's defaults;
checked against ``swin_macs`` called with the arguments written out, and against what FlopCounterMode
counts on the executed module."""
import pytest
import torch

from mmsparse.models import SparseSwin
from mmsparse.sparsity.cost import swin_macs
from mmsparse.sparsity.flop_count import count_macs

SMALL = dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7)
SMALL_RATIOS = [[.5, .5], [.3, .6], [0, 0], [.2, .2]]


def test_macs_of_a_small_swin_equal_swin_macs_with_its_own_arguments():
    model = SparseSwin(**SMALL)
    own = swin_macs((224, 224), SMALL_RATIOS, embed_dims=32, depths=(2, 2, 2, 2), window_size=7)
    assert model.macs((224, 224), SMALL_RATIOS) == own
    assert own != swin_macs((224, 224), [[.5, .5], [.3, .6], [0] * 6, [.2, .2]])  # Swin-T's defaults
    # None: the ratios currently set; the batch multiplies; swin_macs keywords override
    model.set_pruning_ratios(SMALL_RATIOS)
    assert model.macs((224, 224)) == own
    assert model.macs((224, 224), SMALL_RATIOS, batch=3) == 3 * own
    assert model.macs((224, 224), 0.0, convention='paper') == swin_macs((224, 224),
                                                                        None,
                                                                        embed_dims=32,
                                                                        depths=(2, 2, 2, 2),
                                                                        convention='paper')


def test_macs_follow_every_architecture_argument():
    arch = dict(
        embed_dims=16,
        depths=(2, 4, 2, 2),
        num_heads=(1, 1, 2, 2),
        window_size=4,
        patch_size=2,
        strides=(2, 2, 2, 2),
        mlp_ratio=2,
        out_indices=(1, 3),
        keep_rounding='reference_float',
        min_keep=1)
    model = SparseSwin(**arch)
    ratios = [[.8, .8], [.5, .5, .7, .7], [.8, .8], [.8, .8]]
    kwargs = {k: v for k, v in arch.items() if k not in ('num_heads', 'strides')}
    assert model.macs_arguments() == dict(kwargs, in_channels=3)
    expected = swin_macs((64, 96), ratios, convention='paper', **kwargs)
    assert model.macs((64, 96), ratios, convention='paper') == expected
    assert expected != swin_macs((64, 96), ratios, convention='paper', **dict(kwargs, min_keep=0))


def test_bad_macs_arguments_are_refused_naming_them():
    model = SparseSwin(**SMALL)
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['conventoin'\]; allowed: .*'convention'"):
        model.macs((224, 224), None, conventoin='paper')
    with pytest.raises(ValueError, match='pruning_ratios'):
        model.macs((224, 224), [[.5], [0, 0], [0, 0], [0, 0]])
    wide = SparseSwin(**SMALL, strides=(4, 2, 1, 2))
    with pytest.raises(ValueError, match=r'strides \(patch_size, 2, 2, \.\.\.\), got strides=\(4, 2, 1, 2\)'):
        wide.macs((224, 224))


def test_toy_det_backbone_macs_equal_the_counted_macs_of_the_executed_module():
    """The toy det config's backbone (embed 32, min_keep=1), built from the config: the count the
    search logs is what the executed module does (224x224: nothing pads, so the two agree exactly)."""
    import os.path as osp

    from mmengine.config import Config

    from mmsparse.registry import MODELS
    from mmsparse.utils import register_all_modules
    register_all_modules()
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'sparsevit', 'maskrcnn_swin_t_toy.py'))
    torch.manual_seed(0)
    backbone = MODELS.build(cfg.model.backbone).eval()
    searched = [[.3, .3], [.7, .7], [0, 0, .4, .4, .6, .6], [.6, .6]]  # stage 3 keeps its one window
    for ratios in (None, searched):
        backbone.set_pruning_ratios(ratios)
        with torch.no_grad():
            counted = count_macs(lambda: backbone(torch.randn(1, 3, 224, 224)))
        assert backbone.macs((224, 224)) == counted
    assert backbone.macs((224, 224), searched) != swin_macs((224, 224), searched, embed_dims=32)  # min_keep=0


def test_block_timer_times_this_backbone_with_its_geometry_cache():
    model = SparseSwin(**SMALL, pruning_ratios=SMALL_RATIOS).eval()
    timer = model.block_timer((112, 112), measure=lambda fn: 1.0)
    assert timer.backbone is model and timer.num_windows == [16, 4, 1, 1]
    with torch.no_grad():
        expected = model.stage_inputs(timer.images)
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(timer.stage_inputs, expected))
    timer.window_block(0, 0, 8)  # runs through the model's own cache, which now holds stage 0's maps
    assert model.geometry_cache is model._geometry_cache and len(model.geometry_cache.tensors) > 0

"""The loader behind ``benchmark_backbone.py --official``: the fork's imports resolve while the file runs and
are gone afterwards, our weights map onto the official names losslessly, and a missing file is a clear error.

The official file itself is not in the repository (it is the authors' code); the benchmark's measured
equality with it (max abs diff ~5e-6 on Swin-T) is in docs/benchmark.md.
"""
import sys

import pytest
import torch

from tests.tool_runner import load_tool

official_sparsevit = load_tool('tools/analysis_tools/official_sparsevit.py')
swin_to_sparse_swin = load_tool('tools/model_converters/swin_to_sparse_swin.py')

# what the fork's backbone file imports that the OpenMMLab 2.x stack lacks
FORK_STYLE_FILE = '''
from mmcv.runner import BaseModule
from mmcv.runner import _load_checkpoint
from mmdet.utils import get_root_logger
from ..builder import BACKBONES


@BACKBONES.register_module()
class SparseViT(BaseModule):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.logger_name = get_root_logger().name
'''


def test_fork_imports_resolve_while_loading_and_are_removed_afterwards(tmp_path):
    path = tmp_path / 'sparsevit.py'
    path.write_text(FORK_STYLE_FILE)
    import mmdet.utils
    had_logger = hasattr(mmdet.utils, 'get_root_logger')
    module = official_sparsevit.load_official_module(str(path))
    model = module.SparseViT(depths=[2, 2])
    assert isinstance(model, torch.nn.Module) and model.kwargs == dict(depths=[2, 2])
    assert 'mmcv.runner' not in sys.modules
    assert not any(name.startswith('_official_sparsevit') for name in sys.modules)
    assert hasattr(mmdet.utils, 'get_root_logger') == had_logger
    with pytest.raises(RuntimeError, match='loads no checkpoint'):
        module._load_checkpoint(model, 'x.pth')


def test_missing_file_and_wrong_file_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='--official: no file'):
        official_sparsevit.load_official_module(str(tmp_path / 'nope.py'))
    other = tmp_path / 'other.py'
    other.write_text('x = 1\n')
    with pytest.raises(ValueError, match='defines no SparseViT'):
        official_sparsevit.load_official_module(str(other))


def test_our_weights_map_onto_the_official_names_and_back_unchanged():
    from mmsparse.models.backbones import SparseSwin
    torch.manual_seed(0)
    ours = SparseSwin(
        embed_dims=16, depths=(2, 2), num_heads=(1, 2), window_size=7, out_indices=(0, 1), init_cfg=None)
    state = ours.state_dict()
    official = official_sparsevit.official_state_dict(ours)
    assert not any(k.startswith('stages.') for k in official)
    assert {
        'patch_embed.proj.weight', 'layers.0.blocks.1.attn.qkv.weight', 'layers.1.blocks.0.mlp.fc1.weight',
        'layers.0.downsample.reduction.weight', 'norm0.weight', 'norm1.bias'
    } <= set(official)
    back = swin_to_sparse_swin.official_to_ours({
        k: v
        for k, v in official.items() if not k.startswith('norm')
    })
    back.update({k: v for k, v in official.items() if k.startswith('norm')})
    expected = {k: v for k, v in state.items() if k != 'pruning_ratios'}
    assert set(back) == set(expected)
    for key, value in expected.items():
        assert torch.equal(back[key], value), key


def test_ratios_are_set_per_stage_and_a_wrong_stage_count_is_rejected():

    class Layer:
        pruning_ratios = None

    class Official:
        layers = [Layer(), Layer()]

    model = Official()
    official_sparsevit.set_official_ratios(model, [[0.5, 0.5], [0, 0.25]])
    assert [layer.pruning_ratios for layer in model.layers] == [[0.5, 0.5], [0.0, 0.25]]
    with pytest.raises(ValueError, match='3 stages given, the official model has 2'):
        official_sparsevit.set_official_ratios(model, [[0], [0], [0]])

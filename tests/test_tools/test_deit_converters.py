"""timm -> mmpretrain DeiT conversion and the compact-export tool.

The equality test needs DeiT-Small at 224^2 (timm's ``deit_small_patch16_224``); everything else is tiny.
"""
import sys

import pytest
import torch

timm = pytest.importorskip('timm')

from mmengine.registry import init_default_scope  # noqa: E402
from mmpretrain.registry import MODELS as PRETRAIN_MODELS  # noqa: E402

import mmsparse.models  # noqa: F401,E402
from tests.tiny_models import TINY_DEIT, config_kwargs  # noqa: E402
from tools.model_converters import export_compact as export_tool  # noqa: E402
from tools.model_converters import timm_to_mmpretrain_deit as conv  # noqa: E402


def _classifier(backbone_type, arch, head='VisionTransformerClsHead', **backbone):
    init_default_scope('mmpretrain')
    return PRETRAIN_MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type=backbone_type, arch=arch, **backbone),
            head=dict(type=head, num_classes=1000, in_channels={
                'deit-small': 384,
                'deit-tiny': 192
            }[arch])))


def _randomise(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.02 * torch.randn_like(p))
    return model.eval()


def test_convert_key_table():
    assert conv.convert_key('blocks.3.mlp.fc1.weight') == 'backbone.layers.3.ffn.layers.0.0.weight'
    assert conv.convert_key('blocks.3.mlp.fc2.bias') == 'backbone.layers.3.ffn.layers.1.bias'
    assert conv.convert_key('blocks.0.norm1.weight') == 'backbone.layers.0.ln1.weight'
    assert conv.convert_key('blocks.0.attn.qkv.bias') == 'backbone.layers.0.attn.qkv.bias'
    assert conv.convert_key('patch_embed.proj.weight') == 'backbone.patch_embed.projection.weight'
    assert conv.convert_key('norm.bias') == 'backbone.ln1.bias'
    assert conv.convert_key('head.weight') == 'head.layers.head.weight'
    assert conv.convert_key('head_dist.bias') == 'head.layers.head_dist.bias'
    assert conv.convert_key('dist_token') == 'backbone.dist_token'
    with pytest.raises(KeyError, match='unknown'):
        conv.convert_key('blocks.0.ls1.gamma')


def test_timm_deit_small_equals_sparse_deit_and_mmpretrain(tmp_path, monkeypatch):
    timm_model = _randomise(timm.create_model('deit_small_patch16_224', pretrained=False))
    src, dst = tmp_path / 'timm.pth', tmp_path / 'mm.pth'
    torch.save({'model': timm_model.state_dict()}, src)
    monkeypatch.setattr(sys, 'argv', ['x', str(src), str(dst)])
    conv.main()  # the CLI path: read, convert, write
    state = torch.load(dst, weights_only=True)['state_dict']

    ours = _classifier('mmsparse.SparseDeiT', 'deit-small').eval()
    ours.load_state_dict(state, strict=True)
    ref = _classifier('VisionTransformer', 'deit-small').eval()
    ref.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = timm_model(x)
        got = ours(x, mode='tensor')
        assert torch.equal(got, ref(x, mode='tensor'))  # bit-identical to mmpretrain
    assert (got - expected).abs().max().item() <= 1e-5


def test_timm_distilled_tiny_equals_sparse_distilled():
    timm_model = _randomise(timm.create_model('deit_tiny_distilled_patch16_224', pretrained=False))
    state = conv.convert_timm_deit(timm_model.state_dict())
    ours = _classifier('mmsparse.SparseDistilledDeiT', 'deit-tiny', head='DeiTClsHead').eval()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = timm_model(x)  # eval: mean of the two heads, like DeiTClsHead
        got = ours(x, mode='tensor')
    assert (got - expected).abs().max().item() <= 1e-5


CONFIG = """
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmsparse.SparseDeiT',
                  arch=dict({arch}),
                  img_size=32, patch_size=8,
                  structured=dict(heads_kept=3, neurons_kept=100, mask_qkv_bias={mqb})),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=64))
"""


@pytest.mark.parametrize('mask_qkv_bias', [True, False])
def test_export_compact_tool(tmp_path, mask_qkv_bias):
    from mmengine.config import Config
    cfg_file = tmp_path / 'toy_s2vite.py'
    cfg_file.write_text(CONFIG.format(mqb=mask_qkv_bias, arch=config_kwargs(TINY_DEIT)))
    init_default_scope('mmpretrain')
    model = PRETRAIN_MODELS.build(Config.fromfile(str(cfg_file)).model)
    _randomise(model, seed=1)
    model.backbone.apply_structured_masks()  # a trained masked model keeps its slices at zero
    ckpt = tmp_path / 'masked.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        masked = model(x, mode='tensor')

    cfg_path, ckpt_path = export_tool.export(str(cfg_file), str(ckpt), str(tmp_path / 'out'))
    cfg = Config.fromfile(cfg_path)
    assert [c['num_heads'] for c in cfg.model.backbone.layer_cfgs] == [3, 3]
    assert [c['feedforward_channels'] for c in cfg.model.backbone.layer_cfgs] == [100, 100]
    assert 'structured' not in cfg.model.backbone
    init_default_scope('mmpretrain')
    compact = PRETRAIN_MODELS.build(cfg.model)
    compact.load_state_dict(torch.load(ckpt_path, weights_only=False)['state_dict'], strict=True)
    compact.eval()
    with torch.no_grad():
        out = compact(x, mode='tensor')
    assert (out - masked).abs().max().item() <= 1e-5
    assert compact.backbone.layers[0].attn.qkv.weight.shape == (3 * 3 * 16, 64)

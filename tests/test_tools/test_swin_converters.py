"""Swin checkpoint converters -> SparseSwin keys: round trips on random weights, checked independently."""
import pytest
import torch

from mmsparse.models.backbones import SparseSwin
from tests.tiny_models import TINY_SWIN_2222 as TINY
from tests.tool_runner import load_tool

pytestmark = pytest.mark.usefixtures('one_torch_thread')

conv = load_tool('tools/model_converters/swin_to_sparse_swin.py')


def random_state(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
        for k, v in model.state_dict().items()
    }


def test_official_round_trip_and_mmdet_converter_agree():
    from mmdet.models.backbones.swin import swin_converter
    model = SparseSwin(**TINY)
    ours = random_state(model)
    official = conv.ours_to_official(ours)
    assert 'layers.0.downsample.reduction.weight' in official
    assert 'layers.1.blocks.1.mlp.fc1.weight' in official
    official.update({
        'head.weight': torch.zeros(10, 256),
        'norm.weight': torch.ones(256),
        'layers.0.blocks.1.attn_mask': torch.zeros(64, 49, 49)
    })
    back = conv.official_to_ours(dict(model=official))
    shared = {k for k in ours if not k.startswith('norm') and k != 'pruning_ratios'}
    assert set(back) == shared
    for k in shared:
        assert torch.equal(back[k], ours[k]), k
    # mmdet's own converter (an independent implementation) gives the same tensors
    ref = swin_converter(official)
    for k in shared:
        assert torch.equal(back[k], ref['backbone.' + k]), k
    # and the result loads into SparseSwin (only the per-stage output norms are new)
    missing, unexpected = model.load_state_dict(back, strict=False)
    assert unexpected == [] and sorted(missing) == sorted(f'norm{s}.{p}' for s in range(4)
                                                          for p in ('weight', 'bias'))


def test_official_merge_order_reproduces_official_patch_merging():
    """The re-ordered weights make mmdet's Unfold PatchMerging compute the official 2x2 concat."""
    from mmdet.models.layers import PatchMerging
    torch.manual_seed(0)
    c = 8
    w = torch.randn(2 * c, 4 * c)
    nw, nb = torch.randn(4 * c), torch.randn(4 * c)
    x = torch.randn(1, 6 * 4, c)
    xs = x.view(1, 6, 4, c)
    cat = torch.cat([xs[:, 0::2, 0::2], xs[:, 1::2, 0::2], xs[:, 0::2, 1::2], xs[:, 1::2, 1::2]], -1)
    expect = torch.nn.functional.layer_norm(cat.view(1, -1, 4 * c), (4 * c, ), nw, nb) @ w.T
    merge = PatchMerging(c, 2 * c)
    merge.load_state_dict({
        'reduction.weight': conv.merge_weight_official_to_unfold(w),
        'norm.weight': conv.merge_norm_official_to_unfold(nw),
        'norm.bias': conv.merge_norm_official_to_unfold(nb)
    })
    got, hw = merge(x, (6, 4))
    assert hw == (3, 2)
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-5)


def test_mmpretrain_swin_converts_to_equal_outputs():
    from mmpretrain.models.backbones import SwinTransformer as PretrainSwin
    torch.manual_seed(1)
    src = PretrainSwin(
        arch=dict(
            embed_dims=TINY['embed_dims'], depths=list(TINY['depths']), num_heads=list(TINY['num_heads'])),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.)
    src.eval()
    sd = {'backbone.' + k: v for k, v in random_state(src, 2).items()}
    sd['head.fc.weight'] = torch.zeros(10, 256)
    src.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')})
    ours = conv.convert(dict(state_dict=sd), 'mmpretrain', backbone_only=True)
    model = SparseSwin(**TINY).eval()
    model.load_state_dict(ours, strict=True)
    # every stage map larger than a window: at 7x7 mmpretrain turns the shift off, mmdet does not
    x = torch.randn(1, 3, 288, 320)
    with torch.no_grad():
        for a, b in zip(model(x), src(x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_sparsevit_checkpoint_round_trip(tmp_path):
    model = SparseSwin(**TINY)
    backbone = random_state(model, 3)
    backbone.pop('pruning_ratios')
    det = {'backbone.' + k: v for k, v in backbone.items()}
    det['neck.lateral_convs.0.conv.weight'] = torch.randn(4, 4, 1, 1)
    det['backbone.stages.0.blocks.1.attn_mask'] = torch.zeros(1)
    src = tmp_path / 'sparsevit.pth'
    torch.save(dict(state_dict=det, meta=dict(mmdet_version='2.28.2')), src)
    dst = tmp_path / 'ours.pth'
    ratios = [[.6, .6], [0, 0], [.2, .2], [0, 0]]
    conv.main([str(src), str(dst), '--format', 'sparsevit', '--ratios', str(ratios)])
    out = torch.load(dst, weights_only=False)['state_dict']
    assert torch.equal(out['neck.lateral_convs.0.conv.weight'], det['neck.lateral_convs.0.conv.weight'])
    loaded = SparseSwin(**TINY)
    loaded.load_state_dict({
        k[len('backbone.'):]: v
        for k, v in out.items() if k.startswith('backbone.')
    },
                           strict=True)
    assert loaded.checkpoint_pruning_ratios == ratios
    for k, v in backbone.items():
        assert torch.equal(loaded.state_dict()[k], v), k
    with pytest.raises(SystemExit):
        conv.main([str(src), str(dst), '--format', 'timm'])

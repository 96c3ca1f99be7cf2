"""SparseDeiT: equality with mmpretrain, structured masks + compact export, token selector.

Small custom archs (C 64, depth 2, 32x32 images, patch 8 -> 16 patches + class token) keep this fast;
the DeiT-Small reference comparisons live in tests/test_tools/test_deit_converters.py.
"""
import pytest
import torch
from mmpretrain.models.backbones import DistilledVisionTransformer, VisionTransformer

from mmsparse.models.backbones import SparseDeiT, SparseDistilledDeiT
from mmsparse.registry import MODELS
from tests.tiny_models import TINY_DEIT, config_kwargs

ARCH = TINY_DEIT  # head dim 16
NARROW_FFN = dict(TINY_DEIT, feedforward_channels=128)
SMALL = dict(arch=ARCH, img_size=32, patch_size=8)


def _pair(ref_cls=VisionTransformer, ours_cls=SparseDeiT, seed=0, **kwargs):
    """Reference mmpretrain backbone and ours, with the reference's (initialised) weights."""
    torch.manual_seed(seed)
    ref = ref_cls(**SMALL, **kwargs)
    ref.init_weights()
    with torch.no_grad():  # cls/dist tokens start at zero: give them values
        for p in ref.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ours = ours_cls(**SMALL, **kwargs)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def test_state_dict_keys_identical_deit_tiny():
    ref = VisionTransformer(arch='deit-tiny')
    ours = SparseDeiT(arch='deit-tiny')
    assert list(ref.state_dict()) == list(ours.state_dict())
    assert all(ref.state_dict()[k].shape == v.shape for k, v in ours.state_dict().items())
    ref = DistilledVisionTransformer(arch='deit-tiny')
    ours = SparseDistilledDeiT(arch='deit-tiny')
    assert sorted(ref.state_dict()) == sorted(ours.state_dict())


def test_registered_and_built_from_config():
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmsparse'):  # whatever scope earlier tests left
        model = MODELS.build(dict(type='SparseDeiT', **SMALL))
    assert isinstance(model, SparseDeiT)
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    model = PRETRAIN_MODELS.build(dict(type='mmsparse.SparseDistilledDeiT', **SMALL))
    assert isinstance(model, SparseDistilledDeiT)


@pytest.mark.parametrize('out_type', ['cls_token', 'raw', 'featmap', 'avg_featmap'])
def test_dense_bit_identical_to_mmpretrain(out_type):
    ref, ours = _pair(out_type=out_type, out_indices=[0, 1])
    x = torch.randn(2, 3, 32, 32)
    ref.eval(), ours.eval()
    for a, b in zip(ref(x), ours(x)):
        assert torch.equal(a, b)
    # train mode (no drop path) with gradients, and an odd input size (pos-embed resize)
    ref.train(), ours.train()
    xo = torch.randn(1, 3, 40, 24)
    la, lb = ref(xo)[-1].pow(2).sum(), ours(xo)[-1].pow(2).sum()
    assert torch.equal(la, lb)
    la.backward(), lb.backward()
    grads = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        assert torch.equal(p.grad, grads[name].grad), name


def test_distilled_bit_identical():
    ref, ours = _pair(DistilledVisionTransformer, SparseDistilledDeiT)
    ref.eval(), ours.eval()
    x = torch.randn(2, 3, 32, 32)
    (rc, rd), = ref(x)
    (oc, od), = ours(x)
    assert torch.equal(rc, oc) and torch.equal(rd, od)


def test_all_ones_structured_masks_bit_identical():
    ref, _ = _pair()
    ours = SparseDeiT(**SMALL, structured=dict(head_density=1.0, mlp_density=1.0))
    ours.load_state_dict(ref.state_dict())  # mask buffers missing from the file: kept
    ref.eval(), ours.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(ref(x)[0], ours(x)[0])


def test_structured_masks_counts_and_zero_slices():
    model = SparseDeiT(**SMALL, structured=dict(head_density=0.5, mlp_density=0.3, seed=1))
    model.init_weights()
    for layer in model.layers:
        hm, nm = layer.attn.head_mask, layer.neuron_mask
        assert hm.dtype == torch.bool and int(hm.sum()) == 2  # floor(4 * 0.5)
        assert int(nm.sum()) == 76  # floor(256 * 0.3)
        qkv = layer.attn.qkv.weight.view(3, 4, 16, 64)
        assert torch.all(qkv[:, ~hm] == 0) and torch.all(qkv[:, hm].abs().sum((0, 2, 3)) > 0)
        assert torch.all(layer.attn.qkv.bias.view(3, 4, 16)[:, ~hm] == 0)
        assert torch.all(layer.fc1.weight[~nm] == 0) and torch.all(layer.fc2.weight[:, ~nm] == 0)
    # an inactive head's output (the proj input slice) is exactly zero
    grabbed = []
    model.layers[0].attn.proj.register_forward_pre_hook(lambda m, a: grabbed.append(a[0]))
    model.eval()
    model(torch.randn(2, 3, 32, 32))
    dead = (~model.layers[0].attn.head_mask).nonzero().flatten()
    for h in dead.tolist():
        assert torch.all(grabbed[0][..., h * 16:(h + 1) * 16] == 0)
    # state dict carries the masks; a model with another seed takes them over on load
    other = SparseDeiT(**SMALL, structured=dict(head_density=0.5, mlp_density=0.3, seed=7))
    other.load_state_dict(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.head_masks(), model.head_masks()))


@pytest.mark.parametrize('mask_qkv_bias', [True, False])
def test_export_compact_equals_masked(mask_qkv_bias):
    torch.manual_seed(0)
    model = SparseDeiT(
        **SMALL, structured=dict(head_density=0.75, mlp_density=0.5, mask_qkv_bias=mask_qkv_bias))
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():  # non-trivial biases (v bias matters when it is not masked)
            p.add_(0.05 * torch.randn_like(p))
    # different counts per block: block 1 keeps 1 head and 100 neurons
    hm = [model.layers[0].attn.head_mask.clone(), torch.tensor([False, False, True, False])]
    nm = [model.layers[0].neuron_mask.clone(), torch.arange(256) % 5 == 0]
    model.set_structured_masks(hm, nm)
    model.eval()
    x = torch.randn(3, 3, 32, 32)
    masked = model(x)[0]
    compact, cfg = model.export_compact()
    assert [c['num_heads'] for c in cfg['layer_cfgs']] == [3, 1]
    assert [c['feedforward_channels'] for c in cfg['layer_cfgs']] == [128, 52]
    assert compact.layers[1].attn.qkv.weight.shape == (3 * 16, 64)
    assert compact.layers[1].attn.proj.weight.shape == (64, 16)
    assert compact.layers[1].fc1.weight.shape == (52, 64)
    torch.testing.assert_close(compact(x)[0], masked, rtol=0, atol=1e-5)
    # the recorded config builds the same compact model
    rebuilt = MODELS.build(cfg)
    rebuilt.load_state_dict(compact.state_dict(), strict=True)
    rebuilt.eval()
    assert torch.equal(rebuilt(x)[0], compact(x)[0])
    n_params = sum(p.numel() for p in compact.parameters())
    assert n_params < sum(p.numel() for p in model.parameters())


def test_export_infers_masks_from_zero_weights():
    torch.manual_seed(0)
    model = SparseDeiT(**SMALL)
    model.init_weights()
    with torch.no_grad():
        model.layers[0].attn.qkv.weight.view(3, 4, 16, 64)[:, 1] = 0
        model.layers[0].attn.qkv.bias.view(3, 4, 16)[:, 1] = 0
        model.layers[1].fc1.weight[:10] = 0
        model.layers[1].fc2.weight[:, :10] = 0
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    compact, cfg = model.export_compact()
    assert [c['num_heads'] for c in cfg['layer_cfgs']] == [3, 4]
    assert [c['feedforward_channels'] for c in cfg['layer_cfgs']] == [256, 246]
    torch.testing.assert_close(compact(x)[0], model(x)[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize('kwargs,field', [
    (dict(structured=dict(head_density=0.0)), 'head_density'),
    (dict(structured=dict(mlp_density=1.5)), 'mlp_density'),
    (dict(structured=dict(heads_kept=5)), 'heads_kept'),
    (dict(structured=dict(head_density=0.2)), 'head_density'),
    (dict(structured=dict(head_densty=0.5)), 'structured'),
    (dict(token_selector=dict(keep_ratio=0.0)), 'keep_ratio'),
    (dict(token_selector=dict(keep_ratio=1.2)), 'keep_ratio'),
    (dict(token_selector=dict(num_tokens=1)), 'num_tokens'),
    (dict(token_selector=dict(num_tokens=18)), 'num_tokens'),
    (dict(token_selector=dict(num_tokens=9, placement=2)), 'placement'),
    (dict(token_selector=dict(num_tokens=9, train_drop='mask')), 'train_drop'),
    (dict(token_selector=dict(num_tokens=9, keep_ratio=0.5)), 'token_selector'),
    (dict(token_selector=dict(num_tokens=9), out_type='featmap'), 'token_selector'),
])
def test_bad_values_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SparseDeiT(**SMALL, **kwargs)


def _block0_input(model, x):
    seen = []
    h = model.layers[0].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    out = model(x)
    h.remove()
    return seen[0], out


def test_token_selector_shapes_class_token_and_order():
    torch.manual_seed(0)
    model = SparseDeiT(**SMALL, token_selector=dict(num_tokens=9))
    model.init_weights()
    x = torch.randn(2, 3, 32, 32)
    for mode in ('train', 'eval'):
        getattr(model, mode)()
        tokens, out = _block0_input(model, x)
        assert tokens.shape == (2, 9, 64) and out[0].shape == (2, 64)
        # class token (+ its position embedding) stays at index 0
        cls = (model.cls_token + model.pos_embed[:, :1])[0, 0]
        assert torch.equal(tokens[0, 0], cls) and torch.equal(tokens[1, 0], cls)
        idx = model.token_selector.last_indices
        assert idx.shape == (2, 8) and torch.equal(idx, idx.sort(-1).values)
        # the kept tokens are the embedded patches at those indices, unchanged
        emb = model.patch_embed(x)[0] + model.pos_embed[:, 1:]
        assert torch.equal(tokens[:, 1:], torch.stack([emb[b, idx[b]] for b in range(2)]))
    # keep_ratio 0.5 of 17 tokens -> floor(8.5 + 0.5) = 9 tokens
    model = SparseDeiT(**SMALL, token_selector=dict(keep_ratio=0.5))
    model.eval()  # (mmpretrain backbones' train() returns None: no chaining)
    assert _block0_input(model, x)[0].shape[1] == 9


def test_token_selector_gradient_and_determinism():
    torch.manual_seed(0)
    model = SparseDeiT(**SMALL, token_selector=dict(num_tokens=6))
    model.init_weights()
    x = torch.randn(2, 3, 32, 32)
    model.train()
    model.token_selector.tau = 0.5
    model(x)[0].pow(2).sum().backward()
    assert model.token_selector.scorer.weight.grad.abs().sum() > 0
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    # eval == training forward with zero Gumbel noise (dropout/drop path are 0)
    ev = model(x)[0]
    model.train()
    model.token_selector.noise = torch.zeros(2, 16)
    assert torch.equal(model(x)[0], ev)


def test_selector_keeping_everything_is_bit_identical():
    ref, _ = _pair()
    ours = SparseDeiT(**SMALL, token_selector=dict(num_tokens=17))
    ours.load_state_dict(ref.state_dict(), strict=False)
    x = torch.randn(2, 3, 32, 32)
    for mode in ('eval', 'train'):
        ref.train(mode == 'train'), ours.train(mode == 'train')
        assert torch.equal(ref(x)[0], ours(x)[0]), mode


def test_selector_placement_distilled_and_zero_mode():
    torch.manual_seed(0)
    model = SparseDistilledDeiT(**SMALL, token_selector=dict(num_tokens=6, placement=1))
    model.init_weights()
    model.eval()
    seen = []
    model.layers[1].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    first = []
    model.layers[0].register_forward_pre_hook(lambda m, a: first.append(a[0]))
    x = torch.randn(2, 3, 32, 32)
    model(x)
    assert first[0].shape[1] == 18 and seen[0].shape == (2, 6, 64)
    assert model.token_selector.last_indices.shape == (2, 4)  # class + dist always kept
    model = SparseDeiT(**SMALL, token_selector=dict(num_tokens=6, train_drop='zero'))
    model.train()
    tokens, _ = _block0_input(model, x)
    assert tokens.shape[1] == 17  # zeroed, not removed
    assert int((tokens[0, 1:].abs().sum(-1) != 0).sum()) == 5


def test_compact_export_keeps_token_selector():
    torch.manual_seed(0)
    model = SparseDeiT(
        **SMALL, structured=dict(heads_kept=3, neurons_kept=200), token_selector=dict(num_tokens=9))
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    compact, cfg = model.export_compact()
    assert cfg['token_selector'] == dict(num_tokens=9)
    torch.testing.assert_close(compact(x)[0], model(x)[0], rtol=0, atol=1e-5)


def test_head_score_captures_per_block():
    torch.manual_seed(0)
    model = SparseDeiT(**SMALL, structured=dict(heads_kept=2))
    caps = model.head_score_captures()
    assert len(caps) == 2 and caps is not None
    for c in caps:
        c.armed = True
    model.train()
    model(torch.randn(2, 3, 32, 32))[0].sum().backward()
    S, R = caps[0].scores()
    assert S.shape == (4, ) and R.shape == (4, )
    units = model.structured_units()
    assert units[0]['num_heads'] == 4 and units[0]['head_dims'] == 16
    assert units[0]['head_mask'] is model.layers[0].attn.head_mask


TOY_CONFIG = """
_base_ = ['{base}']
model = dict(
    backbone=dict(_delete_=True, type='mmsparse.SparseDeiT',
                  arch=dict({arch}),
                  img_size=32, patch_size=8, drop_path_rate=0.1,
                  token_selector=dict(num_tokens=12)),
    neck=None,
    head=dict(_delete_=True, type='VisionTransformerClsHead', num_classes=8, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))
optim_wrapper = dict(_delete_=True, optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
"""


def test_image_classifier_config_trains_on_toy_imagenet(toy_imagenet, tmp_path):
    """An mmpretrain ImageClassifier config with type='mmsparse.SparseDeiT' (selector on) trains."""
    import os.path as osp

    from tests.tool_runner import REPO_ROOT, data_root_options, run_tool, train_losses
    cfg = tmp_path / 'sparse_deit_toy.py'
    cfg.write_text(
        TOY_CONFIG.format(
            base=osp.join(REPO_ROOT, 'configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py'),
            arch=config_kwargs(NARROW_FFN)))
    work = str(tmp_path / 'work')
    run_tool([
        'train.py',
        str(cfg), '--work-dir', work, '--cfg-options', *data_root_options(toy_imagenet),
        'train_cfg.max_iters=16', 'train_cfg.val_interval=16', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=16'
    ])
    losses = train_losses(work)
    assert sorted(losses) == list(range(1, 17))
    first, last = sum(losses[i] for i in range(1, 5)) / 4, sum(losses[i] for i in range(13, 17)) / 4
    print('toy losses', [round(losses[i], 3) for i in sorted(losses)])
    assert last < first  # 2 epochs of 8 iterations on 128 images: the loss goes down
    state = torch.load(osp.join(work, 'iter_16.pth'), map_location='cpu', weights_only=False)['state_dict']
    ref = VisionTransformer(arch=NARROW_FFN, img_size=32, patch_size=8)
    backbone_keys = {k[len('backbone.'):] for k in state if k.startswith('backbone.')}
    assert backbone_keys == set(
        ref.state_dict()) | {'token_selector.scorer.weight', 'token_selector.scorer.bias'}
    assert state['backbone.token_selector.scorer.weight'].abs().sum() > 0


def test_compact_deit_tiny_paper_config_matches_cost_model():
    """S2ViTE-Tiny (2/3 heads, 537/768 neurons) exported: parameter count == the cost model's
    exact integer (docs/method/svite.md, 4)."""
    from mmsparse.sparsity.vit_cost import deit_cost
    model = SparseDeiT(arch='deit-tiny', structured=dict(head_density=0.7, mlp_density=0.7))
    compact, cfg = model.export_compact()
    assert {c['num_heads'] for c in cfg['layer_cfgs']} == {2}
    assert {c['feedforward_channels'] for c in cfg['layer_cfgs']} == {537}
    classifier = 192 * 1000 + 1000
    n = sum(p.numel() for p in compact.parameters()) + classifier
    assert n == 4_058_068 == deit_cost('deit-tiny', heads_kept=2, mlp_kept=537)['params']

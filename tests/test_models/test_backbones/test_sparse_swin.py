"""SparseSwin against mmdet/mmseg Swin and an independent slow reference (docs/method/sparsevit.md, 2)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones.swin import SwinTransformer as MMDetSwin

from mmsparse.models.backbones import SparseSwin
from mmsparse.models.backbones.sparse_swin_stage import GeometryCache, WindowPathOptions, sparse_stage_forward
from mmsparse.registry import MODELS
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS
from tests.tiny_models import TINY_SWIN_T

CFG2 = PUBLISHED_RATIOS['cfg2']
# a reduced-width Swin (C0 = 32, 32 channels per head) keeps the reference comparisons fast
TINY = TINY_SWIN_T


def randomize_(model, seed=0):
    """Non-trivial norms and position tables (fresh ones are 1/0/0), so padding and bias matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'norm' in name and name.endswith('weight'):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif 'norm' in name and name.endswith('bias'):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif 'relative_position_bias_table' in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model


def make_pair(seed=0, **kwargs):
    """(mmdet SwinTransformer, SparseSwin) with the same random weights, drop_path 0."""
    kwargs.setdefault('drop_path_rate', 0.)
    torch.manual_seed(seed)
    dense = randomize_(MMDetSwin(**{k: v for k, v in kwargs.items() if k in _MMDET_ARGS}), seed)
    sparse = SparseSwin(**kwargs)
    sparse.load_state_dict(dense.state_dict(), strict=True)
    return dense, sparse


pytestmark = pytest.mark.usefixtures('one_torch_thread')

_MMDET_ARGS = ('embed_dims', 'num_heads', 'depths', 'drop_path_rate', 'with_cp', 'out_indices', 'window_size')


def images(shape, batch=1, seed=0):
    return torch.randn(batch, 3, *shape, generator=torch.Generator().manual_seed(seed))


def assert_outputs_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        assert torch.equal(x, y), f'max abs diff {(x - y).abs().max().item()}'


# ----------------------------------------------------------------------------------------------
# ratio 0 == dense, bit for bit (docs/method/sparsevit.md, 2.7)


@pytest.mark.parametrize('shape,train', [((672, 672), False), ((672, 672), True), ((640, 480), False),
                                         ((640, 480), True)])
def test_zero_ratios_equal_mmdet_swin_t(shape, train):
    dense, sparse = make_pair(pruning_ratios=[[0, 0], [0, 0], [0] * 6, [0, 0]])
    dense.train(train)
    sparse.train(train)
    x = images(shape)
    with torch.set_grad_enabled(train):
        assert_outputs_equal(sparse(x), dense(x))


def test_zero_ratios_equal_mmdet_swin_t_800x1216_reference_pad_mode():
    dense, sparse = make_pair(pad_mode='reference')
    dense.eval()
    sparse.eval()
    x = images((800, 1216))
    with torch.no_grad():
        assert_outputs_equal(sparse(x), dense(x))


@pytest.mark.parametrize('shape,train', [((672, 672), False), ((640, 480), True)])
def test_zero_ratios_equal_mmseg_swin_t(shape, train):
    from mmseg.models.backbones.swin import SwinTransformer as MMSegSwin
    torch.manual_seed(3)
    seg = randomize_(MMSegSwin(drop_path_rate=0.), 3)
    sparse = SparseSwin(drop_path_rate=0.)
    sparse.load_state_dict(seg.state_dict(), strict=True)
    seg.train(train)
    sparse.train(train)
    x = images(shape, seed=1)
    with torch.set_grad_enabled(train):
        assert_outputs_equal(sparse(x), seg(x))


# ----------------------------------------------------------------------------------------------
# an independent slow reference written from the definitions of docs/method/sparsevit.md, 2.3-2.6


def _partition(t, ws):
    b, hp, wp, c = t.shape
    t = t.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(b, -1, ws * ws, c)


def _reverse(t, hp, wp, ws):
    b, _, _, c = t.shape
    t = t.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(b, hp, wp, c)


def _rel_index(ws):
    """Swin's relative position index, the paper's formula (not mmdet's double_step_seq)."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def _sw_mask(hp, wp, ws, shift):
    region = torch.zeros(hp, wp)
    for i, hs in enumerate((slice(0, hp - ws), slice(hp - ws, hp - shift), slice(hp - shift, hp))):
        for j, wsl in enumerate((slice(0, wp - ws), slice(wp - ws, wp - shift), slice(wp - shift, wp))):
            region[hs, wsl] = 3 * i + j
    r = _partition(region[None, :, :, None], ws)[0, :, :, 0]
    return torch.where(r[:, None, :] != r[:, :, None], -100.0, 0.0)


def ref_block(block, x, hw, kept, pad_mode):
    """One block on all windows of (B, H*W, C), then copy-through of the windows not in ``kept``."""
    b, _, c = x.shape
    h, w = hw
    ws, shift = 7, block.attn.shift_size
    pb, pr = (7 - h % 7) % 7, (7 - w % 7) % 7
    xp = F.pad(x.view(b, h, w, c), (0, 0, 0, pr, 0, pb))
    valid = F.pad(torch.ones(b, h, w, 1), (0, 0, 0, pr, 0, pb))
    hp, wp = h + pb, w + pr
    if shift:
        xp = torch.roll(xp, (-shift, -shift), (1, 2))
        valid = torch.roll(valid, (-shift, -shift), (1, 2))
    X, V = _partition(xp, ws), _partition(valid, ws) > 0  # (B, nW, 49, C), (B, nW, 49, 1)
    n1 = block.norm1
    y = F.layer_norm(X, (c, ), n1.weight, n1.bias, n1.eps)
    y = torch.where(V, y, torch.zeros(c) if pad_mode == 'dense' else n1.bias)
    m = block.attn.w_msa
    heads = m.num_heads
    qkv = F.linear(y, m.qkv.weight, m.qkv.bias).view(b, -1, 49, 3, heads, c // heads)
    q, k, v = (qkv[..., i, :, :].transpose(2, 3) for i in range(3))  # (B, nW, heads, 49, d)
    attn = (q * (c // heads)**-0.5) @ k.transpose(-1, -2)
    attn = attn + m.relative_position_bias_table[_rel_index(ws)].permute(2, 0, 1)
    if shift:
        attn = attn + _sw_mask(hp, wp, ws, shift)[None, :, None]
    a = (attn.softmax(-1) @ v).transpose(2, 3).reshape(b, -1, 49, c)
    Y = X + F.linear(a, m.proj.weight, m.proj.bias)
    fc1, fc2 = block.ffn.layers[0][0], block.ffn.layers[1]
    n2 = block.norm2
    Z = Y + fc2(F.gelu(fc1(F.layer_norm(Y, (c, ), n2.weight, n2.bias, n2.eps))))
    out = X.clone()
    for i in range(b):
        out[i, kept[i]] = Z[i, kept[i]]
    out = _reverse(out, hp, wp, ws)
    if shift:
        out = torch.roll(out, (shift, shift), (1, 2))
    return out[:, :h, :w].reshape(b, h * w, c)


def ref_ranking(x, hw, shift):
    """Per-image window order by descending sqrt(sum m_t^2), m_t = mean_c |x_t|, ties lower first."""
    b = x.shape[0]
    h, w = hw
    pb, pr = (7 - h % 7) % 7, (7 - w % 7) % 7
    m = F.pad(x.abs().mean(-1).view(b, h, w), (0, pr, 0, pb))
    if shift:
        m = torch.roll(m, (-shift, -shift), (1, 2))
    s = _partition(m[..., None], 7)[..., 0].square().sum(-1).sqrt()
    return [sorted(range(s.shape[1]), key=lambda j: (-s[i, j].item(), j)) for i in range(b)]


def ref_backbone(dense, x, ratios, pad_mode='dense'):
    """Returns (outputs, kept ids per stage per block or None)."""
    x, hw = dense.patch_embed(x)
    outs, kept_all = [], []
    for s, stage in enumerate(dense.stages):
        rs = ratios[s]
        bstar = next((i for i, r in enumerate(rs) if r > 0), None)
        kept_stage, score_input, ranks = [], None, {}
        for i, block in enumerate(stage.blocks):
            if bstar is None or i < bstar:
                x = block(x, hw)
                kept_stage.append(None)
                continue
            if score_input is None:
                score_input = x
            shift = block.attn.shift_size
            if shift not in ranks:
                ranks[shift] = ref_ranking(score_input, hw, shift)
            nw = len(ranks[shift][0])
            k = nw * (10 - round(rs[i] * 10)) // 10  # integer arithmetic on the 0.1 grid
            kept = [r[:k] for r in ranks[shift]]
            kept_stage.append(kept)
            x = ref_block(block, x, hw, kept, pad_mode)
        kept_all.append(kept_stage)
        out, out_hw = x, hw
        if stage.downsample is not None:
            x, hw = stage.downsample(x, hw)
        out = getattr(dense, f'norm{s}')(out)
        outs.append(out.view(-1, *out_hw, out.shape[-1]).permute(0, 3, 1, 2))
    return outs, kept_all


def check_against_reference(dense, sparse, x, ratios, pad_mode='dense', atol=1e-4):
    dense.eval()
    sparse.eval()
    sparse.record_selection = True
    sparse.set_pruning_ratios(ratios)
    with torch.no_grad():
        got = sparse(x)
        ref, ref_kept = ref_backbone(dense, x, ratios, pad_mode)
    for s, (stage_ref, stage_got) in enumerate(zip(ref_kept, sparse.last_selection)):
        for i, (kr, kg) in enumerate(zip(stage_ref, stage_got)):
            if kr is None:
                assert kg is None, (s, i)
            else:
                assert kg.tolist() == kr, f'kept windows differ at stage {s} block {i}'
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=atol)
    return got


@pytest.mark.parametrize('pad_mode,fused', [('dense', True), ('reference', True), ('dense', False),
                                            ('reference', False)])
def test_pruned_tiny_swin_matches_reference_with_padding(pad_mode, fused):
    dense, sparse = make_pair(seed=1, pad_mode=pad_mode, fused_attention=fused, **TINY)
    ratios = [[.3, .5], [0, .2], [.1, .2, .4, .4, .5, .8], [.5, .5]]  # b* = 1 in stage 1
    x = images((224, 320), batch=2, seed=2)  # every stage pads; stage 3 keeps 1 of 2 windows
    check_against_reference(dense, sparse, x, ratios, pad_mode)


def test_pruned_swin_t_cfg2_matches_reference_672():
    dense, sparse = make_pair(seed=2)
    got = check_against_reference(dense, sparse, images((672, 672), seed=3), CFG2)
    # counts at 672^2, k = floor(nW (1 - r)): stage 0 keeps 230 of 576, stage 2 28/28/21/21/18/18 of 36
    sel = sparse.last_selection
    assert [k.shape[1] for k in sel[0]] == [230, 230]
    assert sel[1] == [None, None] and sel[3] == [None, None]
    assert [k.shape[1] for k in sel[2]] == [28, 28, 21, 21, 18, 18]
    assert [o.shape[1:] for o in got] == [(96, 168, 168), (192, 84, 84), (384, 42, 42), (768, 21, 21)]


# ----------------------------------------------------------------------------------------------
# invariants (docs/method/sparsevit.md, 2.7)


def test_force_window_path_is_dense_within_1e5_and_pad_modes():
    dense, sparse = make_pair(seed=4, force_window_path=True, **TINY)
    dense.eval()
    sparse.eval()
    with torch.no_grad():
        for shape in ((224, 320), (200, 300), (224, 224)):
            x = images(shape)
            for a, b in zip(sparse(x), dense(x)):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
        sparse.window_options = sparse.window_options._replace(pad_mode='reference')
        x = images((224, 320))
        diffs = [(a - b).abs().max().item() for a, b in zip(sparse(x), dense(x))]
        assert max(diffs) > 1e-3  # padded tokens enter qkv as norm1's bias: real tokens change
        x = images((224, 224))  # nothing pads: the two modes agree
        for a, b in zip(sparse(x), dense(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def _stage_blocks(seed=0, c=32, heads=2, depth=2):
    torch.manual_seed(seed)
    model = randomize_(
        MMDetSwin(embed_dims=c, num_heads=(heads, ) * 4, depths=(depth, 1, 1, 1), drop_path_rate=0.), seed)
    return model.stages[0].blocks.eval()


@pytest.mark.parametrize('hw', [(14, 21), (10, 13)])
@pytest.mark.parametrize('block_id', [0, 1])
def test_window_locality(hw, block_id):
    """Kept windows equal the dense block's output, the others equal the input bit for bit."""
    blocks = _stage_blocks(depth=2)
    block = blocks[block_id]
    x = torch.randn(2, hw[0] * hw[1], 32)
    ratios = [0.5, 0.5] if block_id == 0 else [0., 0.5]
    record = []
    with torch.no_grad():
        expect = block(x, hw)
        # run only the chosen block in the window path: a one-block "stage"
        got = sparse_stage_forward([block], x, hw, ratios[block_id:block_id + 1], WindowPathOptions(),
                                   GeometryCache(), record)
    kept = record[0]
    shift = block.attn.shift_size
    pb, pr = (7 - hw[0] % 7) % 7, (7 - hw[1] % 7) % 7

    def windows(t):
        t = F.pad(t.view(2, *hw, 32), (0, 0, 0, pr, 0, pb))
        return _partition(torch.roll(t, (-shift, -shift), (1, 2)), 7)

    valid = windows(torch.ones(2, hw[0] * hw[1], 32)) > 0
    gw, ew, xw = windows(got), windows(expect), windows(x)
    for i in range(2):
        is_kept = torch.zeros(gw.shape[1], dtype=torch.bool)
        is_kept[kept[i]] = True
        torch.testing.assert_close(
            gw[i, is_kept][valid[i, is_kept]], ew[i, is_kept][valid[i, is_kept]], rtol=0, atol=1e-5)
        assert torch.equal(gw[i, ~is_kept], xw[i, ~is_kept])


def test_k_zero_block_is_identity():
    blocks = _stage_blocks(depth=2)
    x = torch.randn(1, 7 * 7, 32)  # one window: any r > 0 keeps 0 windows
    record = []
    out = sparse_stage_forward(blocks, x, (7, 7), [.5, .5], WindowPathOptions(), GeometryCache(), record)
    assert torch.equal(out, x)
    assert [k.shape for k in record] == [(1, 0), (1, 0)]
    out = sparse_stage_forward(blocks, x, (7, 7), [.5, .5], WindowPathOptions(min_keep=1), GeometryCache())
    assert not torch.equal(out, x)


def test_counts_nesting_and_reference_float():
    _, sparse = make_pair(seed=5, record_selection=True, **TINY)
    sparse.eval()
    ratios = [[.3, .3], [.8, .8], [.1, .2, .4, .4, .7, .8], [0, 0]]
    sparse.set_pruning_ratios(ratios)
    with torch.no_grad():
        sparse(images((256, 704)))  # nW = 260/65/21/8
    sel = sparse.last_selection
    assert [k.shape[1] for k in sel[1]] == [13, 13]  # floor(65 * 0.2) exactly
    assert [k.shape[1] for k in sel[2]] == [18, 16, 12, 12, 6, 4]
    for stage in sel:
        for i in range(2, len(stage)):
            if stage[i] is not None and stage[i - 2] is not None:
                k = stage[i].shape[1]
                assert torch.equal(stage[i], stage[i - 2][:, :k])  # prefix, hence subset
    sparse.window_options = sparse.window_options._replace(keep_rounding='reference_float')
    with torch.no_grad():
        sparse(images((256, 704)))
    assert [k.shape[1] for k in sparse.last_selection[1]] == [12, 12]
    with torch.no_grad():
        sparse(images((288, 792)))  # stage 1 nW = 90: r = .8 keeps 17 instead of 18
    assert [k.shape[1] for k in sparse.last_selection[1]] == [17, 17]


def test_shared_scoring_and_per_image_selection():
    _, sparse = make_pair(seed=6, record_selection=True, **TINY)
    sparse.eval()
    sparse.set_pruning_ratios([[0, 0], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]])
    x = images((224, 224), batch=3, seed=7)
    with torch.no_grad():
        sparse(x)
        before = [k.clone() for k in sparse.last_selection[2]]
        with torch.no_grad():
            for p in sparse.stages[2].blocks[0].parameters():
                p.add_(torch.randn_like(p))
        sparse(x)
        after = sparse.last_selection[2]
        assert torch.equal(before[2], after[2]) and torch.equal(before[4], after[4])
        perm = torch.tensor([2, 0, 1])
        outs = sparse(x)
        sel = [k.clone() for k in sparse.last_selection[2]]
        outs_p = sparse(x[perm])
        for a, b in zip(outs, outs_p):
            torch.testing.assert_close(a[perm], b, rtol=0, atol=1e-5)
        for a, b in zip(sel, sparse.last_selection[2]):
            assert torch.equal(a[perm], b)
        # determinism in eval mode
        again = sparse(x[perm])
        for a, b in zip(outs_p, again):
            assert torch.equal(a, b)


def test_gradient_identity_at_non_kept_tokens_and_kept_params():
    blocks = _stage_blocks(depth=2).train()
    x = torch.randn(2, 14 * 21, 32, requires_grad=True)
    record = []
    out = sparse_stage_forward(blocks, x, (14, 21), [.5, .5], WindowPathOptions(), GeometryCache(), record)
    g = torch.randn_like(out)
    out.backward(g)
    # tokens in no kept window of either block pass the gradient through unchanged
    touched = torch.zeros(2, 14, 21, dtype=torch.bool)
    for block, kept in zip(blocks, record):
        shift = block.attn.shift_size
        rows = (torch.arange(14) + shift) % 14
        cols = (torch.arange(21) + shift) % 21
        pos = torch.stack(torch.meshgrid(rows, cols, indexing='ij'), -1).view(2, 7, 3, 7, 2)
        pos = pos.permute(0, 2, 1, 3, 4).reshape(6, 49, 2)
        for i in range(2):
            p = pos[kept[i]].reshape(-1, 2)
            touched[i, p[:, 0], p[:, 1]] = True
    touched = touched.view(2, -1)
    assert (~touched).any() and touched.any()
    assert torch.equal(x.grad[~touched], g[~touched])
    assert not torch.equal(x.grad[touched], g[touched])
    for name, p in blocks.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_with_cp_and_ratio_changes_between_iterations():
    """SAA-style training: new ratios every iteration; with_cp gives the same gradients."""
    _, plain = make_pair(seed=8, drop_path_rate=0.1, **TINY)
    cp_model = SparseSwin(with_cp=True, drop_path_rate=0.1, **TINY)
    cp_model.load_state_dict(plain.state_dict(), strict=True)
    x = images((160, 224), batch=2, seed=9)
    for step, ratios in enumerate((CFG2, [[0, .1], [.3, .3], [0] * 6, [0, 0]])):
        grads = []
        for model in (plain, cp_model):
            model.train()
            model.zero_grad()
            model.set_pruning_ratios(ratios)
            torch.manual_seed(step)  # same DropPath draws in both models
            loss = sum(o.square().mean() for o in model(x))
            loss.backward()
            assert torch.isfinite(loss)
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        assert grads[0].keys() == grads[1].keys()
        for n in grads[0]:
            torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# keys, loading, API, validation (docs/method/sparsevit.md, 1)


def test_state_dict_keys_and_strict_loading():
    from mmseg.models.backbones.swin import SwinTransformer as MMSegSwin
    dense = MMDetSwin()
    sparse = SparseSwin(pruning_ratios=CFG2)
    keys = set(sparse.state_dict())
    assert keys == set(dense.state_dict()) | {'pruning_ratios'}
    assert keys == set(MMSegSwin().state_dict()) | {'pruning_ratios'}
    # dense checkpoints (no ratios entry) load strictly; so does our own
    sparse.load_state_dict(dense.state_dict(), strict=True)
    sparse.load_state_dict(MMSegSwin().state_dict(), strict=True)
    sd = sparse.state_dict()
    assert sd['pruning_ratios'].tolist() == [r for s in CFG2 for r in s]
    other = SparseSwin()
    other.load_state_dict(sd, strict=True)
    assert other.checkpoint_pruning_ratios == CFG2
    assert other.get_pruning_ratios() == [[0.] * d for d in (2, 2, 6, 2)]  # config stays authoritative
    # also inside a detector-style wrapper (prefixed keys)
    wrapper = torch.nn.ModuleDict(dict(backbone=SparseSwin()))
    wrapper.load_state_dict({f'backbone.{k}': v for k, v in sd.items()}, strict=True)


def test_registry_and_api():
    model = MODELS.build(dict(type='mmsparse.SparseSwin', pruning_ratios=CFG2, **TINY))
    assert isinstance(model, SparseSwin)
    assert model.get_pruning_ratios() == CFG2
    with model.temporary_pruning_ratios(0.5):
        assert model.pruning_ratios == [[.5] * d for d in (2, 2, 6, 2)]
    assert model.get_pruning_ratios() == CFG2
    model.pruning_ratios = None
    assert model.get_pruning_ratios() == [[0.] * d for d in (2, 2, 6, 2)]
    with pytest.raises(ValueError, match='stage 2, block 4'):
        with model.temporary_pruning_ratios([[0, 0], [0, 0], [.2, .2, .4, .4, .3, .5], [0, 0]]):
            pass
    assert model.get_pruning_ratios() == [[0.] * d for d in (2, 2, 6, 2)]
    # output shapes match dense for any out_indices
    m = SparseSwin(out_indices=(1, 3), pruning_ratios=0.5, **TINY).eval()
    with torch.no_grad():
        outs = m(images((200, 300)))
    assert [o.shape for o in outs] == [(1, 64, 25, 38), (1, 256, 7, 10)]


@pytest.mark.parametrize('kwargs,match', [
    (dict(pruning_ratios=[[0, 0], [0, 0], [0] * 6]), '4 stage lists'),
    (dict(pruning_ratios=[[0, 0], [0, 0, 0], [0] * 6, [0, 0]]), r'stage 1\) must have 2 ratios'),
    (dict(pruning_ratios=[[1., 1.], [0, 0], [0] * 6, [0, 0]]), r'stage 0, block 0.*\[0, 1\)'),
    (dict(pruning_ratios=[[.5, .5], [0, 0], [.4, 0, .2, 0, 0, 0], [0, 0]]), 'stage 2, block 2'),
    (dict(score_mode='l1'), 'score_mode'),
    (dict(pad_mode='zeros'), 'pad_mode'),
    (dict(keep_rounding='round'), 'keep_rounding'),
    (dict(min_keep=2), 'min_keep'),
])
def test_validation_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparseSwin(**kwargs)
    model = SparseSwin()
    if 'pruning_ratios' in kwargs:
        with pytest.raises(ValueError, match=match):
            model.set_pruning_ratios(kwargs['pruning_ratios'])


def test_deepcopy_and_stale_cache():
    """Cached eval biases follow weight updates (the cache keys on the table's version)."""
    _, sparse = make_pair(seed=10, pruning_ratios=0.5, **TINY)
    sparse.eval()
    x = images((224, 224))
    with torch.no_grad():
        a = sparse(x)[0]
        twin = copy.deepcopy(sparse)
        for blk in sparse.stages[0].blocks:
            blk.attn.w_msa.relative_position_bias_table.add_(1.0)
        b = sparse(x)[0]
        c = twin(x)[0]
    assert not torch.equal(a, b)
    assert torch.equal(a, c)


def test_geometry_cache_is_bounded_and_reused():
    cache = GeometryCache(max_entries=3)
    from mmsparse.sparsity.window_selection import stage_geometry
    geos = [stage_geometry(7 * i, 14, 7) for i in (1, 2, 3, 4)]
    first = cache.mask(geos[0], 7, 3, torch.device('cpu'), torch.float32)
    assert cache.mask(geos[0], 7, 3, torch.device('cpu'), torch.float32) is first
    for g in geos[1:]:
        cache.mask(g, 7, 3, torch.device('cpu'), torch.float32)
    assert len(cache.tensors) == 3
    assert cache.mask(geos[0], 7, 3, torch.device('cpu'), torch.float32) is not first  # evicted

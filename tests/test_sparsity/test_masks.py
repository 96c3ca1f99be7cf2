"""ParameterMasker: selection, exact counts, exact zeros after optimizer steps, state round trip."""
import pytest
import torch
import torch.nn as nn

from mmsparse.sparsity.masks import ParameterMasker, sample_unit_mask


class ToyViT(nn.Module):
    """Parameter layout of a one-block DeiT (names as in mmpretrain) plus a token scorer."""

    def __init__(self, C=16):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, C))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, C))
        self.patch = nn.Conv2d(3, C, 4, 4)
        self.ln = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.fc1 = nn.Linear(C, 4 * C)
        self.fc2 = nn.Linear(4 * C, C)
        self.token_selector = nn.Module()
        self.token_selector.scorer = nn.Linear(C, 1)
        self.head = nn.Linear(C, 10)

    def forward(self, img):
        x = self.patch(img).flatten(2).transpose(1, 2)  # (B, 4, C)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        x = self.ln(x)
        q, k, v = self.qkv(x).chunk(3, -1)
        a = torch.softmax(q @ k.transpose(1, 2), -1) @ v
        x = x + self.proj(a)
        x = x + self.fc2(torch.relu(self.fc1(x)))
        return self.head(x[:, 0]) + self.token_selector.scorer(x).mean()


WEIGHTS = ['patch.weight', 'qkv.weight', 'proj.weight', 'fc1.weight', 'fc2.weight', 'head.weight']


def test_default_selection_only_weights():
    masker = ParameterMasker(ToyViT(), density=0.5)
    assert list(masker.params) == WEIGHTS  # no bias, norm, cls_token, pos_embed or scorer


def test_include_exclude_module_types_and_ddp_prefix():
    model = nn.Sequential()
    model.add_module('module', ToyViT())  # looks like a DDP wrapper
    masker = ParameterMasker(model, 0.5, include=[r'fc\d'], exclude=[r'fc2'])
    assert list(masker.params) == ['fc1.weight']
    masker = ParameterMasker(ToyViT(), 0.5, module_types=[nn.Conv2d])
    assert list(masker.params) == ['patch.weight']


def test_exact_counts_match_erk_and_global_density():
    model = ToyViT()
    masker = ParameterMasker(model, density=0.4, seed=3)
    total = sum(p.numel() for p in masker.params.values())
    for name, p, mask in masker.items():
        assert int(mask.sum()) == round(masker.densities[name] * p.numel())
        assert mask.dtype == torch.bool and mask.shape == p.shape
        assert torch.all(p[~mask] == 0)
    assert abs(masker.global_density() - 0.4) <= len(masker.params) / total
    dens = masker.layer_density()
    assert set(dens) == set(WEIGHTS)
    # same seed -> same masks; another seed -> different
    again = ParameterMasker(ToyViT(), density=0.4, seed=3)
    other = ParameterMasker(ToyViT(), density=0.4, seed=4)
    assert all(torch.equal(masker.masks[k], again.masks[k]) for k in masker.masks)
    assert not all(torch.equal(masker.masks[k], other.masks[k]) for k in masker.masks)


def test_density_one_creates_nothing_and_bernoulli_is_approximate():
    model = ToyViT()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masker = ParameterMasker(model, 1.0)
    assert masker.masks == {} and masker.global_density() == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    masker = ParameterMasker(ToyViT(), 0.3, sampling='bernoulli', distribution='uniform')
    fc1 = masker.masks['fc1.weight']
    assert abs(fc1.float().mean().item() - 0.3) < 0.1
    with pytest.raises(ValueError, match='density'):
        ParameterMasker(ToyViT(), 0.0)
    with pytest.raises(ValueError, match='sampling'):
        ParameterMasker(ToyViT(), 0.5, sampling='topk')


def test_magnitude_init_keeps_largest():
    model = ToyViT()
    w = model.fc1.weight.detach().clone()
    masker = ParameterMasker(model, 0.5, init_source='magnitude', distribution='uniform')
    mask = masker.masks['fc1.weight']
    assert w.abs()[mask].min() >= w.abs()[~mask].max()


@pytest.mark.parametrize('opt_name', ['adamw', 'sgd'])
@pytest.mark.parametrize('state_mode', ['keep', 'mask'])
def test_masked_weights_exactly_zero_after_optimizer_steps(opt_name, state_mode):
    torch.manual_seed(0)
    model = ToyViT()
    masker = ParameterMasker(model, 0.3, optimizer_state=state_mode, seed=1)
    if opt_name == 'adamw':
        opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.05)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.05)
    img = torch.randn(2, 3, 8, 8)
    for _ in range(3):
        opt.zero_grad()
        model(img).pow(2).sum().backward()
        # the dense gradient exists at masked positions (it is the growth score, docs/method/svite.md, 1)
        assert any(p.grad[~m].abs().sum() > 0 for _, p, m in masker.items())
        opt.step()
        # the optimizer revives masked entries (moments + weight decay) ...
        assert any(p[~m].abs().sum() > 0 for _, p, m in masker.items())
        masker.apply(opt)
        # ... and apply() makes them exactly zero again
        for name, p, mask in masker.items():
            assert torch.all(p[~mask] == 0), name
            state = opt.state[p]
            for key in ('exp_avg', 'exp_avg_sq', 'momentum_buffer'):
                if key in state:
                    zeroed = bool(torch.all(state[key][~mask] == 0))
                    assert zeroed == (state_mode == 'mask'), (name, key)


def test_apply_leaves_active_weights_bit_identical():
    model = ToyViT()
    masker = ParameterMasker(model, 0.5)
    before = model.fc1.weight.detach().clone()
    with torch.no_grad():
        model.fc1.weight.add_(1.0)
    expected = (before + 1.0) * masker.masks['fc1.weight']
    masker.apply()
    assert torch.equal(model.fc1.weight, expected)


def test_state_dict_round_trip_and_set_mask():
    model = ToyViT()
    masker = ParameterMasker(model, 0.5, seed=0)
    state = masker.state_dict()
    other = ParameterMasker(ToyViT(), 0.5, seed=7)
    other.load_state_dict(state)
    assert all(torch.equal(other.masks[k], masker.masks[k]) for k in masker.masks)
    assert torch.equal(other.generator.get_state(), masker.generator.get_state())
    new = torch.zeros_like(masker.masks['fc2.weight'])
    new[0, :3] = True
    masker.set_mask('fc2.weight', new)
    assert int((model.fc2.weight != 0).sum()) <= 3
    with pytest.raises(ValueError, match='mask'):
        masker.set_mask('fc2.weight', new.float())
    bad = dict(state, masks={'nope': new})
    with pytest.raises(ValueError, match='missing'):
        other.load_state_dict(bad)


def test_sample_unit_mask():
    m = sample_unit_mask(6, 4, torch.Generator().manual_seed(0))
    assert m.dtype == torch.bool and int(m.sum()) == 4
    with pytest.raises(ValueError, match='keep'):
        sample_unit_mask(3, 4)


def test_growth_score_at_masked_position_is_dense_gradient():
    # L = sum(t * (W x)) -> dL/dW = t x^T everywhere, also where W is masked to 0
    torch.manual_seed(0)
    lin = nn.Linear(5, 3, bias=False)
    masker = ParameterMasker(lin, 0.4, distribution='uniform')
    x, t = torch.randn(5), torch.randn(3)
    (t * lin(x)).sum().backward()
    mask = masker.masks['weight']
    assert (~mask).any()
    torch.testing.assert_close(lin.weight.grad[~mask], torch.outer(t, x)[~mask])


def test_masker_prune_and_grow_counts_values_and_scores():
    torch.manual_seed(0)
    model = ToyViT()
    masker = ParameterMasker(model, 0.4, seed=2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    img = torch.randn(2, 3, 8, 8)
    opt.zero_grad()
    model(img).pow(2).sum().backward()
    opt.step()
    masker.apply(opt)
    assert masker.grads_finite()
    before = {n: (p.detach().clone(), m.clone()) for n, p, m in masker.items()}
    swaps = masker.prune_and_grow(0.3)
    for name, p, new in masker.items():
        w_old, old = before[name]
        n_old = int(old.sum())
        assert swaps[name] == -(-3 * n_old // 10)  # ceil(0.3 * nnz)
        assert int(new.sum()) == n_old == round(masker.densities[name] * p.numel())
        assert torch.all(p[new & ~old] == 0)  # newly grown start at exactly 0
        assert torch.equal(p[new & old], w_old[new & old])  # survivors bit-identical
        assert torch.all(p[~new] == 0)
        # what left the mask is among the k smallest |w| of the old active set (the rest of those
        # k may have been re-grown), and nothing else left
        k = swaps[name]
        act = old.flatten().nonzero().flatten()
        smallest = act[torch.argsort(w_old.flatten()[act].abs(), stable=True)[:k]]
        left = (old & ~new).flatten().nonzero().flatten()
        assert set(left.tolist()) <= set(smallest.tolist())
    p = model.fc1.weight
    p.grad[0, 0] = float('nan')
    assert not masker.grads_finite()


def test_broadcast_is_noop_without_group_and_keeps_masks_in_a_group(tmp_path):
    import torch.distributed as dist
    model = ToyViT()
    masker = ParameterMasker(model, 0.5, seed=0)
    before = {k: m.clone() for k, m in masker.masks.items()}
    masker.broadcast()  # no process group: nothing happens
    assert all(torch.equal(before[k], m) for k, m in masker.masks.items())
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    try:
        masker.broadcast(src=0)
    finally:
        dist.destroy_process_group()
    assert all(torch.equal(before[k], m) and m.dtype == torch.bool for k, m in masker.masks.items())

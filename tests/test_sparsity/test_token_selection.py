"""Gumbel-softmax straight-through top-k (docs/method/svite.md, 3): the forward keeps the hard top-k,
the gradient is the softmax's, and the temperature never changes which tokens are kept."""
import pytest
import torch

from mmsparse.sparsity.token_selection import (gather_tokens, gumbel_noise, gumbel_topk_st,
                                               num_tokens_from_keep_ratio, temperature, topk_indices)


def test_forward_exact_zero_one_and_selection_independent_of_tau():
    torch.manual_seed(0)
    scores = torch.randn(3, 10)
    noise = gumbel_noise((3, 10), torch.Generator().manual_seed(1))
    sets = []
    for tau in (0.1, 1.0, 10.0):
        y, idx = gumbel_topk_st(scores, 4, tau, noise=noise)
        assert set(y.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(y.sum(-1), torch.full((3, ), 4.0))
        assert torch.equal(idx, idx.sort(-1).values)  # ascending
        assert torch.equal(y.gather(1, idx), torch.ones(3, 4))
        sets.append(idx)
    assert torch.equal(sets[0], sets[1]) and torch.equal(sets[1], sets[2])
    # the selection is the top-k of log_softmax(s) + g (hand check)
    ref = topk_indices(torch.log_softmax(scores, -1) + noise, 4)
    assert torch.equal(sets[0], ref)


def test_gradient_reaches_scores_and_scales_with_inverse_tau():
    torch.manual_seed(0)
    scores = torch.randn(2, 8)
    noise = gumbel_noise((2, 8), torch.Generator().manual_seed(0))
    weights = torch.randn(2, 8)
    grads = {}
    for tau in (0.5, 5.0):
        s = scores.clone().requires_grad_()
        y, _ = gumbel_topk_st(s, 3, tau, noise=noise)
        (y * weights).sum().backward()
        assert s.grad.abs().sum() > 0
        grads[tau] = s.grad.abs().sum().item()
    assert grads[0.5] > grads[5.0]


def test_zero_noise_equals_plain_topk_and_errors():
    scores = torch.tensor([[0.1, 3.0, 2.0, -1.0, 2.5]])
    y, idx = gumbel_topk_st(scores, 2, 1.0, noise=torch.zeros(1, 5))
    assert idx.tolist() == [[1, 4]]
    with pytest.raises(ValueError, match='tau'):
        gumbel_topk_st(scores, 2, 0.0)
    with pytest.raises(ValueError, match='k must'):
        gumbel_topk_st(scores, 6, 1.0)


def test_gumbel_noise_is_finite_and_seeded():
    a = gumbel_noise((1000, ), torch.Generator().manual_seed(3))
    b = gumbel_noise((1000, ), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert abs(a.mean().item() - 0.5772) < 0.1  # Euler-Mascheroni constant


def test_gather_tokens():
    x = torch.arange(2 * 5 * 3).float().view(2, 5, 3)
    idx = torch.tensor([[0, 3], [1, 4]])
    out = gather_tokens(x, idx)
    assert torch.equal(out[0], x[0, [0, 3]]) and torch.equal(out[1], x[1, [1, 4]])


def test_keep_ratio_mapping_and_temperature():
    assert [num_tokens_from_keep_ratio(r, 197) for r in (0.95, 0.9, 0.7, 0.5, 1.0)] == \
        [187, 177, 138, 99, 197]
    assert num_tokens_from_keep_ratio(0.001, 197) == 2
    # the selector runs the same count: 196 patches + the class token
    from mmsparse.models.layers.deit_layers import TokenSelector
    kept = [TokenSelector(8, 1, keep_ratio=r).num_kept_patches(196) + 1 for r in (0.95, 0.9, 0.7, 0.5, 1.0)]
    assert kept == [187, 177, 138, 99, 197]
    for bad in (0, 1.2, -1, float('nan')):
        with pytest.raises(ValueError, match='keep_ratio'):
            num_tokens_from_keep_ratio(bad, 197)
    assert temperature(0, 100) == 10.0 and temperature(100, 100) == pytest.approx(0.1)
    assert temperature(50, 100) == pytest.approx(5.05)
    assert temperature(25, 100, (0.1, 10.0)) == pytest.approx(0.1 + 9.9 / 4)
    with pytest.raises(ValueError, match='tau'):
        temperature(1, 10, (0.0, 1.0))

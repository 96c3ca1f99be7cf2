"""Importance scores and unit -> tensor-slice mapping (docs/method/svite.md, 2)."""
import pytest
import torch
import torch.nn as nn

from mmsparse.sparsity.importance import (HeadScoreCapture, apply_head_mask, apply_neuron_mask,
                                          gradient_magnitude, head_gradient_scores, head_proj_cols,
                                          head_qkv_rows, head_row_mask, head_taylor_scores,
                                          neuron_gradient_scores, neuron_l1_scores, weight_magnitude)


class TinyAttn(nn.Module):
    """Plain multi-head attention with an optional scalar gate per head (for the Taylor check)."""

    def __init__(self, C=12, H=3):
        super().__init__()
        self.H, self.d = H, C // H
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.gate = torch.ones(H, requires_grad=True)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.H, self.d).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) * self.d**-0.5, -1) @ v  # (B, H, N, d)
        a = a * self.gate.view(1, -1, 1, 1)
        return self.proj(a.transpose(1, 2).reshape(B, N, C))


def test_magnitudes():
    w = torch.tensor([[-2., 1.]], dtype=torch.float16)
    assert torch.equal(weight_magnitude(w), torch.tensor([[2., 1.]]))
    assert gradient_magnitude(w).dtype == torch.float32


def test_head_taylor_equals_gate_gradient_batch_one():
    torch.manual_seed(0)
    attn = TinyAttn()
    x = torch.randn(1, 5, 12)
    cap = HeadScoreCapture(attn.proj, num_heads=3, head_dim=4)
    cap.armed = True
    out = attn(x)
    loss = (out * torch.randn_like(out)).sum()
    loss.backward()
    S, R = cap.scores()
    # S_h = |dL/d gamma_h| for a scalar gate gamma_h = 1 on head h's output
    torch.testing.assert_close(S, attn.gate.grad.abs(), rtol=1e-5, atol=1e-7)
    assert S.shape == (3, ) and R.shape == (3, ) and (R > 0).all()
    cap.remove()


def test_head_scores_on_explicit_tensors_and_capture_accumulates():
    torch.manual_seed(0)
    A = torch.randn(2, 4, 3, 5)
    G = torch.randn(2, 4, 3, 5)
    S = head_taylor_scores(A, G)
    ref = torch.stack(
        [torch.stack([(A[b, :, h] * G[b, :, h]).sum().abs() for h in range(3)]) for b in range(2)]).mean(0)
    torch.testing.assert_close(S, ref)
    torch.testing.assert_close(head_gradient_scores(G), G.abs().sum((1, 3)).mean(0))
    torch.testing.assert_close(head_taylor_scores(A, G, reduce='sum'), 2 * ref)
    # R_h equals the L1 norm of autograd's dL/dA_h on the real module (batch 2, two passes)
    attn = TinyAttn()
    cap = HeadScoreCapture(attn.proj, 3, 4)
    x = torch.randn(2, 5, 12)
    grabbed = []

    def grab(module, args):
        args[0].register_hook(grabbed.append)  # returns None: the input is left unchanged

    h = attn.proj.register_forward_pre_hook(grab)
    attn(x).sum().backward()  # not armed: nothing captured
    assert cap.count == 0
    cap.armed = True
    for _ in range(2):
        attn(x).sum().backward()
    h.remove()
    G = grabbed[-1].view(2, 5, 3, 4)
    _, R = cap.scores()
    torch.testing.assert_close(R, G.abs().sum((1, 3)).mean(0))
    assert cap.count == 4
    cap.reset()
    with pytest.raises(RuntimeError, match='arm'):
        cap.scores()


def test_neuron_scores():
    fc1 = torch.tensor([[1., -2.], [0., 3.], [4., 0.]])  # (F=3, C=2)
    fc2 = torch.tensor([[1., 0., -1.], [1., 1., 0.]])  # (C=2, F=3)
    assert neuron_l1_scores(fc1, fc2).tolist() == [5., 4., 5.]
    assert neuron_gradient_scores(fc1, fc2).tolist() == [5., 4., 5.]


def test_unit_mapping_rows_cols():
    rows = head_qkv_rows(torch.tensor([0, 2]), num_heads=3, head_dim=2)
    assert rows.tolist() == [0, 1, 4, 5, 6, 7, 10, 11, 12, 13, 16, 17]
    assert head_row_mask(torch.tensor([True, False, True]), 2).nonzero().flatten().tolist() == \
        rows.tolist()
    assert head_proj_cols(torch.tensor([1, 2]), 2).tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize('mask_bias', [True, False])
def test_apply_head_mask_zeroes_inactive_head_output(mask_bias):
    torch.manual_seed(0)
    attn = TinyAttn()
    head_mask = torch.tensor([True, False, True])
    apply_head_mask(attn.qkv, head_mask, 4, mask_qkv_bias=mask_bias)
    assert torch.all(attn.qkv.weight.view(3, 3, 4, 12)[:, 1] == 0)
    assert bool(torch.all(attn.qkv.bias.view(3, 3, 4)[:, 1] == 0)) == mask_bias
    grabbed = []
    attn.proj.register_forward_pre_hook(lambda m, a: grabbed.append(a[0]))
    attn(torch.randn(2, 5, 12))
    head1 = grabbed[0][..., 4:8]
    if mask_bias:  # an inactive head outputs exactly 0
        assert torch.all(head1 == 0)
    else:  # uniform attention over equal values: the v bias for every token
        torch.testing.assert_close(head1, attn.qkv.bias[2 * 12 + 4:2 * 12 + 8].expand_as(head1))


def test_apply_neuron_mask_rows_and_cols_together():
    fc1, fc2 = nn.Linear(4, 6), nn.Linear(6, 4)
    keep = torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.bool)
    b1 = fc1.bias.detach().clone()
    apply_neuron_mask(fc1, fc2, keep)
    assert torch.all(fc1.weight[~keep] == 0) and torch.all(fc2.weight[:, ~keep] == 0)
    assert torch.all(fc1.weight[keep] != 0) and torch.equal(fc1.bias, b1)


def test_mlp_gradient_growth_regrows_the_just_pruned_neurons():
    """A property of the neuron criterion (docs/method/svite.md, 2): with W2[:, j] = 0 a never-active
    neuron gets zero growth score, so gradient growth re-selects exactly the neurons it just pruned (the
    neuron set never changes)."""
    from mmsparse.sparsity.prune_grow import prune_count, select_largest, select_smallest
    torch.manual_seed(0)
    fc1, fc2 = nn.Linear(6, 12), nn.Linear(12, 6)
    nn.init.zeros_(fc1.bias)  # as initialised; never-active neurons never get a bias gradient
    mask = torch.zeros(12, dtype=torch.bool)
    mask[torch.randperm(12)[:7]] = True
    apply_neuron_mask(fc1, fc2, mask)
    x = torch.randn(4, 6)
    fc2(torch.nn.functional.gelu(fc1(x))).pow(2).sum().backward()
    k = prune_count(0.5, int(mask.sum()))
    pruned = select_smallest(neuron_l1_scores(fc1.weight, fc2.weight), mask, k)
    after = mask.clone()
    after[pruned] = False
    grow_score = neuron_gradient_scores(fc1.weight.grad, fc2.weight.grad)
    assert torch.all(grow_score[~mask] == 0)  # never active: no signal at all
    grown = select_largest(grow_score, ~after, k)
    assert sorted(grown.tolist()) == sorted(pruned.tolist())

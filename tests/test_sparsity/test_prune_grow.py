"""Prune/grow selection and schedules (docs/method/svite.md, 1): exact counts by index, stable ties, and
the update steps and rates of the reference's training recipes."""
import math

import pytest
import torch

from mmsparse.sparsity.prune_grow import (magnitude_prune, prune_and_grow, prune_count, prune_rate,
                                          resolve_t_end, select_largest, select_smallest)
from tests.svite_schedule import runtime_update_steps

# the reference's recipes: model -> (T_total, dT, updates, r at 1st / 40th / last update, reference decay)
RECIPES = {
    'tiny': (1_501_200, 20_000, 60, (0.49978, 0.22696, 0.05256)),
    'small': (1_501_200, 15_000, 80, (0.49988, 0.32922, 0.05256)),
    'base': (750_600, 7_000, 85, (0.49989, 0.34862, 0.05566)),
}


@pytest.mark.parametrize('model', sorted(RECIPES))
def test_reference_schedule_values_and_update_counts(model):
    t_total, dt, n_updates, expected = RECIPES[model]
    t_end = resolve_t_end(0.8, t_total)
    assert t_end == int(0.8 * t_total + 0.5)
    steps = runtime_update_steps(dt, t_end, t_total)
    assert len(steps) == n_updates
    assert steps[:3] == [dt, 2 * dt, 3 * dt] and steps[-1] < t_end and steps[-1] + dt >= t_end
    rates = [
        prune_rate(t, 'cosine_reference', 0.5, t_end, t_total, 0.005)
        for t in (steps[0], steps[39], steps[-1])
    ]
    assert [round(r, 5) for r in rates] == list(expected)


def test_paper_cosine_t_end_small():
    t_total, dt = 1_501_200, 15_000
    t_end = resolve_t_end(0.8, t_total)
    steps = runtime_update_steps(dt, t_end, t_total)
    r = [prune_rate(t, 'cosine_t_end', 0.5, t_end=t_end) for t in (steps[0], steps[39], steps[-1])]
    assert round(r[0], 5) == 0.49981 and round(r[1], 5) == 0.25031
    assert r[2] == pytest.approx(7.9e-7, abs=5e-9)
    assert prune_rate(123, 'constant', 0.3) == 0.3


def test_no_update_at_step_zero_or_after_t_end():
    steps = runtime_update_steps(5, t_end=100, t_total=200)
    assert steps[0] == 5 and steps[-1] == 95 and 0 not in steps and 100 not in steps
    with pytest.raises(ValueError, match='update_interval'):
        runtime_update_steps(0, t_end=100, t_total=200)
    with pytest.raises(ValueError, match='t_end'):
        resolve_t_end(1.5, 100)
    with pytest.raises(ValueError, match='death_rate'):
        prune_rate(1, 'constant', 1.0)
    with pytest.raises(ValueError, match='decay'):
        prune_rate(1, 'linear', 0.5)


def test_prune_count_is_ceil():
    assert prune_count(0.5, 7) == 4 and prune_count(0.01, 3) == 1 and prune_count(0.0, 9) == 0


def test_select_stable_ties_by_index():
    scores = torch.tensor([3., 1., 1., 2., 1.])
    cand = torch.ones(5, dtype=torch.bool)
    assert select_smallest(scores, cand, 2).tolist() == [1, 2]
    assert select_largest(torch.tensor([1., 5., 5., 0.]), cand[:4], 2).tolist() == [1, 2]
    cand = torch.tensor([True, False, True, True, True])
    assert select_smallest(scores, cand, 3).tolist() == [2, 4, 3]


def test_prune_and_grow_on_toy_layer_with_distinct_values():
    torch.manual_seed(0)
    w = torch.randperm(48).float().view(6, 8) - 24  # distinct |w| up to sign pairs -> use offsets
    w = w + 0.01 * torch.arange(48).view(6, 8)  # now all |w| distinct
    g = torch.randperm(48).float().view(6, 8) + 1.0
    mask = torch.zeros(48, dtype=torch.bool)
    mask[torch.randperm(48)[:20]] = True
    mask = mask.view(6, 8)
    w_masked = w * mask
    r = 0.3
    new, k = prune_and_grow(w_masked, g, mask, r)
    assert k == math.ceil(0.3 * 20) == 6
    assert int(new.sum()) == 20  # nnz unchanged
    # pruned set = the k smallest |w| among the active entries (hand computed with sorted())
    active = [(abs(w_masked.flatten()[i].item()), i) for i in range(48) if mask.flatten()[i]]
    pruned = {i for _, i in sorted(active)[:k]}
    after_prune = mask.flatten().clone()
    after_prune[list(pruned)] = False
    # grown set = the k largest |g| among post-prune inactive entries (the pruned ones included)
    inactive = [(-g.flatten()[i].item(), i) for i in range(48) if not after_prune[i]]
    grown = {i for _, i in sorted(inactive)[:k]}
    expected = after_prune.clone()
    expected[list(grown)] = True
    assert torch.equal(new.flatten(), expected)
    assert torch.equal(magnitude_prune(w_masked, mask, k).flatten(), after_prune)


def test_random_growth_counts_and_errors():
    w = torch.arange(1., 11.)
    mask = torch.tensor([True] * 6 + [False] * 4)
    gen = torch.Generator().manual_seed(0)
    new, k = prune_and_grow(w, None, mask, 0.5, growth='random', generator=gen)
    assert k == 3 and int(new.sum()) == 6
    assert new[3:6].all()  # the three largest actives survive; growth only among the others
    with pytest.raises(ValueError, match='gradient'):
        prune_and_grow(w, None, mask, 0.5)
    with pytest.raises(ValueError, match='growth'):
        prune_and_grow(w, w, mask, 0.5, growth='snip')


def test_unit_prune_and_grow_heads():
    from mmsparse.sparsity.prune_grow import unit_prune_and_grow
    mask = torch.tensor([True, True, True, True, False, False])
    S = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.0, 0.0])  # prune score (active heads only matter)
    R = torch.tensor([0.0, 0.7, 0.0, 0.2, 0.4, 0.8])  # growth score
    new, k = unit_prune_and_grow(mask, S, R, 0.5)
    assert k == 2  # ceil(0.5 * 4)
    # pruned {1, 3} (S 0.1, 0.3); candidates {1, 3, 4, 5}; grown: 5 (0.8), 1 (0.7)
    assert new.tolist() == [True, True, True, False, False, True]
    gen = torch.Generator().manual_seed(0)
    new, k = unit_prune_and_grow(mask, S, None, 0.5, growth='random', generator=gen)
    assert int(new.sum()) == 4 and new[4] and new[5]  # two fresh units available, both taken
    new, k = unit_prune_and_grow(mask, S, None, 0.75, growth='random', generator=gen)
    assert k == 3 and int(new.sum()) == 4 and new[4] and new[5]
    assert new[2]  # the highest-S head is never pruned at k = 3

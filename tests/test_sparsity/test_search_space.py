"""SwinRatioSpace: size, grid/pair/sort invariants of every operator, expansion, SAA sampler law."""
import itertools
import json
import math
import pickle
from collections import Counter

import numpy as np
import pytest

from mmsparse.sparsity.ratios import PUBLISHED_RATIOS
from mmsparse.sparsity.search_space import DEFAULT_CHOICES, SwinRatioSpace, iteration_rng

CFG2_BLOCKS = PUBLISHED_RATIOS['cfg2']
CFG2_GENES = dict(s0=.6, s1=0.0, s2_1=.2, s2_2=.4, s2_3=.5, s3=0.0)


def _chi2_critical(df, z=3.719):
    """Upper 1e-4 quantile of chi-square(df): scipy if present, else Wilson-Hilferty."""
    try:
        from scipy.stats import chi2
        return float(chi2.ppf(1 - 1e-4, df))
    except ImportError:
        return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df)))**3


def _chi2(counts, probs, n):
    return sum((counts.get(cell, 0) - n * p)**2 / (n * p) for cell, p in probs.items())


def _check_member(space, genes):
    """On the grid, sorted per stage, and the block expansion is pair-equal."""
    assert set(genes) == set(space.names)
    assert all(genes[n] in space.choices for n in space.names)
    for names in space.gene_names:
        vals = [genes[n] for n in names]
        assert vals == sorted(vals)
    blocks = space.to_block_ratios(genes)
    for stage, depth in zip(blocks, space.depths):
        assert len(stage) == depth
        assert all(stage[2 * j] == stage[2 * j + 1] for j in range(depth // 2))


def test_size_and_names():
    space = SwinRatioSpace()
    assert space.size() == 120285 == 9**3 * math.comb(11, 3)
    assert space.names == ['s0', 's1', 's2_1', 's2_2', 's2_3', 's3']
    # Swin-B/L style depth 18: 9 sorted genes in stage 2 -> C(9+9-1, 9) sequences
    deep = SwinRatioSpace(depths=(2, 2, 18, 2))
    assert deep.size() == 9**3 * math.comb(17, 9)
    assert deep.gene_names[2] == [f's2_{j}' for j in range(1, 10)]
    # brute force on a small grid: every non-decreasing triple on 4 values
    small = SwinRatioSpace(depths=(6, ), choices=(0.0, 0.2, 0.4, 0.6))
    brute = sum(1 for t in itertools.product(range(4), repeat=3) if list(t) == sorted(t))
    assert small.size() == brute == 20


def test_fixed_genes_and_stages():
    space = SwinRatioSpace(fixed={'s1': 0.0, 's3': 0.0, 's2_2': 0.4})
    # s0 free (9) * s2_1 in {0..4} (5) * s2_3 in {4..8} (5)
    assert space.size() == 9 * 5 * 5
    rng = np.random.default_rng(0)
    for _ in range(200):
        g = space.sample(rng)
        _check_member(space, g)
        assert g['s1'] == g['s3'] == 0.0 and g['s2_2'] == 0.4
        parent = space.sample(rng)
        assert space.mutate(parent, rng, prob=0.5)['s2_2'] == 0.4
        assert space.crossover(parent, g, rng)['s2_2'] == 0.4
    whole = SwinRatioSpace(fixed={'s2': 0.3})
    assert whole.size() == 9**3
    assert [whole.sample(rng)[n] for n in ('s2_1', 's2_2', 's2_3')] == [0.3, 0.3, 0.3]
    with pytest.raises(ValueError, match='non-decreasing'):
        SwinRatioSpace(fixed={'s2_1': 0.5, 's2_3': 0.2})
    with pytest.raises(ValueError, match='unknown gene'):
        SwinRatioSpace(fixed={'s7': 0.0})
    with pytest.raises(ValueError, match='off the ratio grid'):
        SwinRatioSpace(fixed={'s0': 0.35})
    with pytest.raises(ValueError, match='fixes it'):
        space.validate(dict(CFG2_GENES, s2_2=0.3))


def test_expansion_round_trip():
    space = SwinRatioSpace()
    assert space.to_block_ratios(CFG2_GENES) == CFG2_BLOCKS
    assert space.from_block_ratios(CFG2_BLOCKS) == CFG2_GENES
    # float noise from configs maps onto the exact grid value and the canonical key
    noisy = [[.1 * 6, .1 * 6], [0, 0], [.1 * 2, .2, .4, .4, .5, .5], [0, 0]]
    assert space.key(space.from_block_ratios(noisy)) == space.key(CFG2_GENES)
    assert json.loads(space.key(CFG2_GENES)) == CFG2_GENES
    assert space.key(CFG2_GENES) == json.dumps(CFG2_GENES, sort_keys=True)
    assert space.uniform(0.5) == {n: 0.5 for n in space.names}


@pytest.mark.parametrize('blocks, match', [
    ([[.6, .6], [0, 0], [.2, .2, .4, .4, .5, .5]], 'must have 4 stage lists'),
    ([[.6, .6], [0, 0], [.2, .2, .4, .4, .5], [0, 0]], r'pruning_ratios\[2\] must have 6'),
    ([[.65, .65], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]], r'pruning_ratios\[0\]\[0\] = 0.65 is off'),
    ([[.9, .9], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]], r'pruning_ratios\[0\]\[0\] = 0.9 is off'),
    ([[.6, .6], [0, 0], [.2, .3, .4, .4, .5, .5], [0, 0]], r'pruning_ratios\[2\]\[0:2\].*pair'),
    ([[.6, .6], [0, 0], [.4, .4, .2, .2, .5, .5], [0, 0]], r'stage 2 genes must be non-decreasing'),
    ([[.6, .6], ['a', 0], [.2, .2, .4, .4, .5, .5], [0, 0]], r'pruning_ratios\[1\]\[0\] must be a number'),
])
def test_from_block_ratios_errors(blocks, match):
    with pytest.raises(ValueError, match=match):
        SwinRatioSpace().from_block_ratios(blocks)


def test_constructor_errors():
    with pytest.raises(ValueError, match='depths'):
        SwinRatioSpace(depths=(2, 3))
    with pytest.raises(ValueError, match='choices'):
        SwinRatioSpace(choices=(0.0, 0.5, 0.5))
    with pytest.raises(ValueError, match='choices'):
        SwinRatioSpace(choices=(0.0, 1.0))
    with pytest.raises(ValueError, match='exactly the genes'):
        SwinRatioSpace().validate({'s0': 0.1})


def test_operators_stay_in_space():
    space = SwinRatioSpace()
    rng = np.random.default_rng(1)
    pop = [space.sample(rng) for _ in range(300)]
    for g in pop:
        _check_member(space, g)
    for i in range(300):
        a, b = pop[i], pop[(i * 7 + 1) % 300]
        _check_member(space, space.mutate(a, rng, prob=0.1))
        _check_member(space, space.mutate(a, rng, prob=1.0))
        _check_member(space, space.crossover(a, b, rng))
    # mutation with prob 0 is the identity; crossover of a config with itself is itself
    assert space.mutate(CFG2_GENES, rng, prob=0.0) == CFG2_GENES
    assert space.crossover(CFG2_GENES, CFG2_GENES, rng) == CFG2_GENES
    # crossover takes each gene from one parent: dense x uniform-0.8 gives a 0/0.8 mix, sorted
    child = space.crossover(space.uniform(0.0), space.uniform(0.8), rng)
    assert set(child.values()) <= {0.0, 0.8}


def test_mutation_rate():
    """About 10 % of genes take the fresh value (which differs from the parent's 8/9 of the time)."""
    space = SwinRatioSpace()
    rng = np.random.default_rng(2)
    n, changed = 4000, 0
    dense = space.uniform(0.0)
    for _ in range(n):
        child = space.mutate(dense, rng, prob=0.1)
        changed += sum(v != 0.0 for v in child.values())
    rate = changed / (n * len(space.names))
    assert abs(rate - 0.1 * 8 / 9) < 0.01


def test_rng_state_serialisable_and_reproducible():
    space = SwinRatioSpace()
    rng = np.random.default_rng(3)
    space.sample(rng)
    state = json.loads(json.dumps(rng.bit_generator.state))
    expected = [space.sample(rng) for _ in range(5)]
    restored = np.random.default_rng()
    restored.bit_generator.state = pickle.loads(pickle.dumps(state))
    assert [space.sample(restored) for _ in range(5)] == expected
    # SAA: iteration-derived draws are identical on every call (every rank) and differ across iters
    assert space.sample(iteration_rng(0, 17)) == space.sample(iteration_rng(0, 17)) \
        == space.sample_at(0, 17)
    draws = {space.key(space.sample_at(0, it)) for it in range(50)}
    assert len(draws) > 40
    assert space.sample_at(1, 17) != space.sample_at(0, 17) or space.sample_at(1, 18) != space.sample_at(
        0, 18)


def test_sampler_law_chi_square():
    """The sampler (docs/method/sparsevit.md, 3.1): depth-2 stages uniform over 9 values; stage 2
    follows the sorted-i.i.d. triple law."""
    space = SwinRatioSpace()
    rng = np.random.default_rng(4)
    n = 40000
    samples = [space.sample(rng) for _ in range(n)]
    uniform9 = {v: 1 / 9 for v in DEFAULT_CHOICES}
    crit8 = _chi2_critical(8)
    for name in ('s0', 's1', 's3'):
        assert _chi2(Counter(g[name] for g in samples), uniform9, n) < crit8
    # sorted triple (a <= b <= c) has probability 3!/prod(multiplicity!) / 9**3
    triple_law = {}
    for t in itertools.combinations_with_replacement(DEFAULT_CHOICES, 3):
        mult = math.prod(math.factorial(m) for m in Counter(t).values())
        triple_law[t] = 6 / mult / 9**3
    assert len(triple_law) == 165 and abs(sum(triple_law.values()) - 1) < 1e-12
    counts = Counter((g['s2_1'], g['s2_2'], g['s2_3']) for g in samples)
    crit164 = _chi2_critical(164)
    assert _chi2(counts, triple_law, n) < crit164
    # the test discriminates: the same draws are far from uniform over the 165 triples, so
    # a sampler that picked one of the sorted triples uniformly would fail it
    assert _chi2(counts, {t: 1 / 165 for t in triple_law}, n) > 10 * crit164
    # stages are independent of each other: (s0, s1) jointly uniform over 81 cells
    joint = Counter((g['s0'], g['s1']) for g in samples)
    assert _chi2(joint, {(a, b): 1 / 81 for a in DEFAULT_CHOICES for b in DEFAULT_CHOICES}, n) \
        < _chi2_critical(80)

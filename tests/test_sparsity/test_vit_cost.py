"""DeiT cost model (docs/method/svite.md, 4): exact integers of the formula, and the paper's rows (dense
1.3 / 4.6 / 17.6 G, unstructured and token savings within 0.2 pp, structured within 0.5 pp)."""
import pytest

from mmsparse.sparsity.erk import erk_densities
from mmsparse.sparsity.vit_cost import deit_cost, deit_masked_shapes, role_densities, vit_cost

DENSE = {
    'deit-tiny': (1_253_683_200, 5_717_416),
    'deit-small': (4_598_882_304, 22_050_664),
    'deit-base': (17_563_828_224, 86_567_656),
}


@pytest.mark.parametrize('arch', sorted(DENSE))
def test_dense_macs_and_params_exact(arch):
    cost = deit_cost(arch)
    assert cost['macs'] == DENSE[arch][0]
    assert cost['params'] == DENSE[arch][1]
    # the papers' 1.3 / 4.6 / 17.6 G are these numbers rounded to 0.1 G (1.254 G is 3.6 % below the
    # rounded 1.3, so a relative tolerance on the rounded figure would be the wrong check)
    paper = {'deit-tiny': 1.3, 'deit-small': 4.6, 'deit-base': 17.6}[arch]
    assert round(cost['macs'] / 1e9, 1) == paper
    assert deit_cost(arch, convention='paper')['macs'] == DENSE[arch][0]


def _erk_saving(arch, d, num_tokens=None):
    roles = role_densities(erk_densities(deit_masked_shapes(arch), d))
    cost = deit_cost(arch, weight_density=roles, num_tokens=num_tokens)
    return 100 * (1 - cost['macs'] / DENSE[arch][0])


SAVINGS = {
    ('deit-tiny', 0.3): 59.94,
    ('deit-tiny', 0.5): 42.74,
    ('deit-tiny', 0.7): 25.56,
    ('deit-small', 0.3): 64.58,
    ('deit-small', 0.5): 46.15,
    ('deit-small', 0.7): 27.73,
    ('deit-base', 0.4): 57.67,
    ('deit-base', 0.6): 38.54,
    ('deit-base', 0.7): 28.98,
}


@pytest.mark.parametrize('arch,d', sorted(SAVINGS))
def test_unstructured_savings_of_erk_masks(arch, d):
    assert round(_erk_saving(arch, d), 2) == SAVINGS[(arch, d)]


def test_paper_unstructured_extremes():
    assert abs(_erk_saving('deit-tiny', 0.7) - 25.56) <= 0.2  # paper's lowest SViTE saving


@pytest.mark.parametrize('tokens,saving', [(197, 46.15), (187, 49.24), (177, 52.30), (138, 63.83),
                                           (99, 74.75)])
def test_token_savings_small_density_half(tokens, saving):
    assert round(_erk_saving('deit-small', 0.5, tokens), 2) == saving


def test_svite_plus_headline_within_tolerance():
    assert abs(_erk_saving('deit-small', 0.5, 187) - 49.32) <= 0.2


# S2ViTE at head and neuron density 0.7, compact export: (heads kept, neurons kept per block) ->
# params paper, params real, MACs real, MACs paper, the paper's MACs saving in %
STRUCTURED = {
    'deit-tiny': (2, 537, 4_205_524, 4_058_068, 868_180_992, 956_840_448, 23.7),
    'deit-small': (4, 921, 14_601_364, 14_011_540, 2_898_315_264, 3_133_731_840, 31.6),
    'deit-base': (8, 1843, 56_812_876, 54_453_580, 11_003_633_664, 11_706_857_472, 33.13),
}


@pytest.mark.parametrize('arch', sorted(STRUCTURED))
def test_structured_rows(arch):
    a, h, p_paper, p_real, m_real, m_paper, paper_saving = STRUCTURED[arch]
    real = deit_cost(arch, heads_kept=a, mlp_kept=h, convention='real')
    paper = deit_cost(arch, heads_kept=a, mlp_kept=h, convention='paper')
    assert (real['params'], real['macs']) == (p_real, m_real)
    assert (paper['params'], paper['macs']) == (p_paper, m_paper)
    saving = 100 * (1 - paper['macs'] / DENSE[arch][0])
    assert abs(saving - paper_saving) <= 0.5


def test_per_layer_lists_and_validation():
    per_layer = deit_cost('deit-tiny', heads_kept=[3] * 11 + [1], mlp_kept=[768] * 11 + [10])
    C, N = 192, 197
    removed = N * 3 * 2 * 64 * C + N * 2 * 64 * C + 2 * N * N * 2 * 64 + 2 * N * 758 * C
    assert DENSE['deit-tiny'][0] - per_layer['macs'] == removed
    distilled = deit_cost('deit-tiny', distilled=True)
    assert distilled['params'] == DENSE['deit-tiny'][1] + 192 + 192 + 192 * 1000 + 1000
    with pytest.raises(ValueError, match='num_tokens'):
        deit_cost('deit-tiny', num_tokens=1)
    with pytest.raises(ValueError, match='weight_density'):
        deit_cost('deit-tiny', weight_density={'qkv': 1.5})
    with pytest.raises(ValueError, match='convention'):
        deit_cost('deit-tiny', convention='fvcore')
    with pytest.raises(ValueError, match='num_heads'):
        vit_cost(64, 2, [1, 1, 1], 128)

"""ERK per-layer densities (docs/method/svite.md, 1) against DeiT's densities tabulated from the rule (to 3
decimals) and a hand computation."""
import math

import pytest

from mmsparse.sparsity.erk import erk_densities, layer_densities, uniform_densities
from mmsparse.sparsity.vit_cost import deit_masked_shapes, role_densities

# (arch, d) -> patch, qkv, proj, fc1/fc2, classifier
ERK_TABLE = {
    ('deit-tiny', 0.3): (0.068, 0.307, 0.461, 0.288, 0.275),
    ('deit-tiny', 0.4): (0.091, 0.410, 0.615, 0.384, 0.366),
    ('deit-tiny', 0.5): (0.114, 0.512, 0.768, 0.480, 0.458),
    ('deit-tiny', 0.6): (0.136, 0.615, 0.922, 0.576, 0.550),
    ('deit-tiny', 0.7): (0.161, 0.724, 1.0, 0.679, 0.647),
    ('deit-small', 0.3): (0.124, 0.302, 0.453, 0.283, 0.314),
    ('deit-small', 0.4): (0.165, 0.403, 0.604, 0.378, 0.418),
    ('deit-small', 0.5): (0.206, 0.504, 0.756, 0.472, 0.523),
    ('deit-small', 0.6): (0.247, 0.604, 0.907, 0.567, 0.627),
    ('deit-small', 0.7): (0.291, 0.710, 1.0, 0.666, 0.737),
    ('deit-base', 0.3): (0.235, 0.300, 0.449, 0.281, 0.397),
    ('deit-base', 0.4): (0.313, 0.399, 0.599, 0.374, 0.530),
    ('deit-base', 0.5): (0.392, 0.499, 0.749, 0.468, 0.662),
    ('deit-base', 0.6): (0.470, 0.599, 0.899, 0.562, 0.794),
    ('deit-base', 0.7): (0.552, 0.704, 1.0, 0.660, 0.933),
}


@pytest.mark.parametrize('arch,d', sorted(ERK_TABLE))
def test_erk_table(arch, d):
    shapes = deit_masked_shapes(arch)
    dens = erk_densities(shapes, d)
    roles = role_densities(dens)
    patch, qkv, proj, fc, cls = ERK_TABLE[(arch, d)]
    got = (roles['patch'], roles['qkv'], roles['proj'], roles['fc1'], roles['classifier'])
    assert [round(v, 3) for v in got] == [patch, qkv, proj, fc, cls]
    assert roles['fc2'] == roles['fc1']
    # the budget is met exactly: sum p_l N_l == d sum N_l
    numel = {k: math.prod(s) for k, s in shapes.items()}
    kept = sum(dens[k] * numel[k] for k in shapes)
    assert kept == pytest.approx(d * sum(numel.values()), rel=1e-9)
    # every block gets the same densities
    assert len({v for k, v in dens.items() if k.endswith('attn.qkv.weight')}) == 1


@pytest.mark.parametrize('arch', ['deit-tiny', 'deit-small', 'deit-base'])
def test_dense_set_at_0_7_is_the_twelve_projs(arch):
    dens = erk_densities(deit_masked_shapes(arch), 0.7)
    dense = sorted(k for k, v in dens.items() if v == 1.0)
    assert dense == sorted(f'backbone.layers.{i}.attn.proj.weight' for i in range(12))
    assert all(v < 1 for k, v in dens.items() if k not in dense)


def test_erk_hand_computation_with_kernel_dims():
    # conv (4, 2, 3, 3): N = 72, pi = 12/72; linear (8, 4): N = 32, pi = 12/32; d = 0.5
    shapes = {'conv': (4, 2, 3, 3), 'fc': (8, 4)}
    dens = erk_densities(shapes, 0.5)
    eps = 0.5 * (72 + 32) / (12 + 12)  # sum pi_l N_l = 12 + 12
    assert dens['conv'] == pytest.approx(eps * 12 / 72, rel=1e-12)
    assert dens['fc'] == pytest.approx(eps * 12 / 32, rel=1e-12)
    # at d = 0.9 the fc layer would exceed 1: it becomes dense, eps solved over the conv alone
    dens = erk_densities(shapes, 0.9)
    assert dens['fc'] == 1.0
    assert dens['conv'] == pytest.approx((0.9 * 104 - 32) / 72, rel=1e-12)


def test_uniform_and_density_one_and_errors():
    shapes = deit_masked_shapes('deit-tiny')
    assert set(uniform_densities(shapes, 0.4).values()) == {0.4}
    assert set(layer_densities(shapes, 1.0).values()) == {1.0}
    for bad in (0, -0.1, 1.5, float('nan'), '0.5'):
        with pytest.raises(ValueError, match='density'):
            erk_densities(shapes, bad)
    with pytest.raises(ValueError, match='distribution'):
        layer_densities(shapes, 0.5, 'snip')

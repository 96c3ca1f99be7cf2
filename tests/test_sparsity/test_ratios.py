"""Validation of per-stage per-block pruning ratios (docs/method/sparsevit.md, 1 and 2.4), and the named
sets against the reference's released configurations.

The released numbers are written out here, and only here: every other test takes them from
``PUBLISHED_RATIOS``, which this file pins.
"""
import pytest

from mmsparse.sparsity.ratios import PUBLISHED_RATIOS, dense_ratios, is_dense, validate_pruning_ratios

DEPTHS = (2, 2, 6, 2)
CFG2 = [[.6, .6], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]]


def test_valid_forms():
    assert validate_pruning_ratios(None, DEPTHS) == dense_ratios(DEPTHS)
    assert is_dense(validate_pruning_ratios(None, DEPTHS))
    got = validate_pruning_ratios(CFG2, DEPTHS)
    assert got == ((.6, .6), (0., 0.), (.2, .2, .4, .4, .5, .5), (0., 0.))
    assert all(isinstance(r, float) for stage in got for r in stage)
    assert not is_dense(got)
    assert validate_pruning_ratios(.5, DEPTHS) == tuple((.5, ) * d for d in DEPTHS)
    # parities are independent: a shifted block may be below the preceding regular block
    assert validate_pruning_ratios([[0, 0], [0, 0], [.4, .2, .4, .3, .5, .3], [0, 0]], DEPTHS)


@pytest.mark.parametrize('ratios,match', [
    ([[0, 0], [0, 0], [0] * 6], r'4 stage lists'),
    ([[0, 0], [0, 0, 0], [0] * 6, [0, 0]], r'stage 1\) must have 2 ratios'),
    ([[0, 0], [0, 0], [0] * 5, [0, 0]], r'stage 2\) must have 6 ratios'),
    ([[1.0, 1.0], [0, 0], [0] * 6, [0, 0]
      ], r'stage 0, block 0\) = 1.0 is outside the allowed range \[0, 1\)'),
    ([[0, 0], [0, -.1], [0] * 6, [0, 0]], r'stage 1, block 1\) = -0.1 is outside the allowed range \[0, 1\)'),
    ([[0, 0], [0, 0], [.2, .2, .4, .4, .3, .5], [0, 0]
      ], r'stage 2, block 4\) = 0.3 is lower than block 2 \(0.4\).*allowed range \[0.4, 1\)'),
    ([[0, 0], [0, 0], [.2, .2, .4, .1, .5, .5], [0, 0]
      ], r'stage 2, block 3\) = 0.1 is lower than block 1 .*shifted-window'),
    ([[0, 0], [0, 'a'], [0] * 6, [0, 0]], r'stage 1, block 1\) must be a float'),
    ('0.5', r"'0.5' is not a named ratio set; allowed names: \['cfg1'"),
    (b'cfg2', r'must be None, a float'),
    ([[0, 0], 0.5, [0] * 6, [0, 0]], r'stage 1\) must be a list'),
])
def test_each_violation_is_one_value_error(ratios, match):
    with pytest.raises(ValueError, match=match):
        validate_pruning_ratios(ratios, DEPTHS)


def test_named_ratio_sets_are_the_reference_released_configurations():
    # mit-han-lab/sparsevit configs/sparsevit/sparsevit_cfg{1,2,3}_*.py, and the uniform baseline
    assert PUBLISHED_RATIOS == {
        'dense': [[0, 0], [0, 0], [0, 0, 0, 0, 0, 0], [0, 0]],
        'cfg1': [[.3, .3], [0, 0], [.1, .1, .2, .2, .2, .2], [0, 0]],
        'cfg2': [[.6, .6], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]],
        'cfg3': [[.7, .7], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]],
        'uniform-0.5': 0.5,
    }


def test_named_ratio_sets_resolve_to_the_published_lists():
    assert validate_pruning_ratios('cfg2', DEPTHS) == ((.6, .6), (0., 0.), (.2, .2, .4, .4, .5, .5), (0., 0.))
    assert validate_pruning_ratios('uniform-0.5', (2, 2, 2, 2)) == ((.5, .5), ) * 4
    with pytest.raises(ValueError, match=r"'cfg2' is defined for Swin-T depths \(2, 2, 6, 2\)"):
        validate_pruning_ratios('cfg2', (2, 2, 2, 2))


def test_scalar_out_of_range():
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        validate_pruning_ratios(1.5, DEPTHS)


def test_other_depths():
    depths = (2, 2, 18, 2)
    ratios = [[0, 0], [0, 0], [i // 2 / 10 for i in range(18)], [0, 0]]
    assert validate_pruning_ratios(ratios, depths)[2][-1] == .8

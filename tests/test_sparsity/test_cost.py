"""Swin cost model (docs/method/sparsevit.md, 4) against the paper's Tables 1-2 and the reference's
released configurations."""
import itertools

import pytest

from mmsparse.sparsity.cost import block_macs_per_window, swin_macs, swin_macs_breakdown
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS

CFG1, CFG2, CFG3 = (PUBLISHED_RATIOS[name] for name in ('cfg1', 'cfg2', 'cfg3'))
# the set printed in the paper's third SparseViT row (105.9 G), from the reference's first commit
FIRST_COMMIT = [[.7, .7], [0, 0], [.3, .3, .4, .4, .7, .7], [0, 0]]
UNIFORM_05 = [[.5] * 2, [.5] * 2, [.5] * 6, [.5] * 2]

# (name, (H, W), ratios, batch multiplier, C0, core G, paper-convention G, paper's printed G or None)
ROWS = [
    ('dense 672', (672, 672), None, 1, 96, 40.408, 40.459, None),
    ('cfg1 672', (672, 672), CFG1, 1, 96, 34.832, 34.876, None),
    ('cfg2 672', (672, 672), CFG2, 1, 96, 29.078, 29.115, None),
    ('cfg3 672', (672, 672), CFG3, 1, 96, 28.396, 28.431, None),
    ('uniform 0.5 672', (672, 672), UNIFORM_05, 1, 96, 20.699, 20.731, None),
    ('dense 672 x4 (the paper prints it as 640x640)', (672, 672), None, 4, 96, 161.63, 161.84, 161.8),
    ('R576 x4', (576, 576), None, 4, 96, 149.33, 149.50, 149.5),
    ('R544 x4', (544, 544), None, 4, 96, 119.69, 119.83, 119.8),
    ('R512 x4', (512, 512), None, 4, 96, 117.35, 117.49, 117.5),
    ('W0.9 640 x4', (640, 640), None, 4, 84, 122.16, 122.33, 122.3),
    ('W0.8 640 x4', (640, 640), None, 4, 72, 90.32, 90.47, 90.5),
    ('W0.6 640 x4', (640, 640), None, 4, 60, 63.28, 63.40, 63.4),
    ('cfg1 672 x4', (672, 672), CFG1, 4, 96, 139.33, 139.50, 139.5),
    ('cfg2 672 x4', (672, 672), CFG2, 4, 96, 116.31, 116.46, 116.5),
    ('cfg3 released 672 x4', (672, 672), CFG3, 4, 96, 113.58, 113.73, None),
    ("first-commit set x4 (the paper's third row)", (672, 672), FIRST_COMMIT, 4, 96, 105.79, 105.93, 105.9),
    ('256x704 x6', (256, 704), None, 6, 96, 140.61, 140.76, 140.8),
    ('R224 224x616 x6', (224, 616), None, 6, 96, 78.37, 78.47, 78.5),
    ('R192 192x528 x6', (192, 528), None, 6, 96, 67.03, 67.10, 67.1),
    ('W0.6 256x704 x6', (256, 704), None, 6, 60, 55.91, 56.01, 56.0),
]


@pytest.mark.parametrize('name,shape,ratios,batch,c0,core,paper_conv,printed', ROWS, ids=[r[0] for r in ROWS])
def test_macs_rows(name, shape, ratios, batch, c0, core, paper_conv, printed):
    got_core = swin_macs(shape, ratios, batch=batch, embed_dims=c0) / 1e9
    got_paper = swin_macs(shape, ratios, batch=batch, embed_dims=c0, convention='paper') / 1e9
    # core within 0.01 G and paper convention within 0.05 G of the values in ROWS
    assert got_core == pytest.approx(core, abs=0.01)
    assert got_paper == pytest.approx(paper_conv, abs=0.05)
    if printed is not None:
        # every printed MACs entry of the paper's Tables 1-2 within 0.2 G ...
        assert got_paper == pytest.approx(printed, abs=0.2)
        # ... and in fact to the printed 0.1 G precision
        assert round(got_paper, 1) == printed


def test_dense_640_is_not_the_papers_161_8():
    # the "640x640" row of Table 2 (161.8 G) is dense 672^2; dense 640^2 is 159.0 G
    assert swin_macs((640, 640), batch=4, convention='paper') / 1e9 == pytest.approx(159.0, abs=0.05)


def test_per_window_and_per_block_numbers_672():
    # Swin-T at 672^2, core convention, by part
    per_window = [block_macs_per_window(c) for c in (96, 192, 384, 768)]
    assert per_window == [5_880_000, 22_598_016, 88_548_096, 350_504_448]
    parts = swin_macs_breakdown((672, 672))
    assert parts['num_windows'] == [576, 144, 36, 9]
    per_block = [stage[0] / 1e9 for stage in parts['blocks']]
    assert per_block == pytest.approx([3.387, 3.254, 3.188, 3.155], abs=5e-4)
    assert parts['patch_embed'] / 1e9 == pytest.approx(0.130, abs=5e-4)
    assert [m / 1e9 for m in parts['merges']] == pytest.approx([0.520] * 3, abs=5e-4)
    assert sum(map(sum, parts['blocks'])) / 1e9 == pytest.approx(38.717, abs=5e-4)
    assert parts['total'] / 1e9 == pytest.approx(40.408, abs=5e-4)
    # the unprunable parts are 4.2 % of the backbone
    fixed = parts['patch_embed'] + sum(parts['merges'])
    assert fixed / parts['total'] == pytest.approx(0.042, abs=5e-4)


def test_mac_speedups_672():
    dense = swin_macs((672, 672))
    speedups = [dense / swin_macs((672, 672), r) for r in (CFG1, CFG2, CFG3, UNIFORM_05)]
    assert speedups == pytest.approx([1.16, 1.39, 1.42, 1.95], abs=0.005)
    # floor rule: stage 3 keeps 4 of 9 windows at r = 0.5
    assert swin_macs_breakdown((672, 672), UNIFORM_05)['kept'][3] == [4, 4]


def test_keep_rounding_reaches_the_cost():
    # nW(stage 1) = 65 at 256x704: r = .8 keeps 13 windows exactly, 12 under float truncation
    ratios = [[0, 0], [.8, .8], [0] * 6, [0, 0]]
    exact = swin_macs_breakdown((256, 704), ratios)
    ref = swin_macs_breakdown((256, 704), ratios, keep_rounding='reference_float')
    assert exact['num_windows'] == [260, 65, 21, 8]
    assert exact['kept'][1] == [13, 13] and ref['kept'][1] == [12, 12]
    assert exact['total'] - ref['total'] == 2 * block_macs_per_window(192)


def test_min_keep_and_k_zero():
    # stage 3 at 224^2 has one window: any r > 0 skips it unless min_keep=1
    ratios = [[0, 0], [0, 0], [0] * 6, [.1, .1]]
    assert swin_macs_breakdown((224, 224), ratios)['blocks'][3] == [0, 0]
    kept = swin_macs_breakdown((224, 224), ratios, min_keep=1)['kept'][3]
    assert kept == [1, 1]


def test_monotone_in_every_ratio():
    # raising any one block's ratio on the grid never increases MACs
    base = [[.2, .2], [.1, .1], [.1, .1, .3, .3, .4, .4], [0, 0]]
    for conv, (s, stage) in itertools.product(('core', 'paper'), enumerate(base)):
        for b in range(len(stage)):
            prev = swin_macs((640, 480), base, convention=conv)
            for r in (0.5, 0.6, 0.7, 0.8):
                ratios = [list(x) for x in base]
                ratios[s][b] = r
                cur = swin_macs((640, 480), ratios, convention=conv)
                assert cur <= prev
                prev = cur


def test_bad_arguments():
    with pytest.raises(ValueError, match='convention'):
        swin_macs((224, 224), convention='flops')
    with pytest.raises(ValueError, match='batch'):
        swin_macs((224, 224), batch=0)
    with pytest.raises(ValueError, match='depths'):
        swin_macs((224, 224), [[0, 0]])

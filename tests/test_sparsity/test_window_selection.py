"""Window geometry, kept counts, scores and rankings (docs/method/sparsevit.md, 2.1-2.4)."""
import pytest
import torch
import torch.nn.functional as F

from mmsparse.sparsity.window_selection import (flat_token_index, num_kept_windows, rank_windows,
                                                shifted_window_mask, stage_geometry, stage_hw, token_index,
                                                token_scores, window_scores)

NW_TABLE = {  # windows per stage on the padded grid
    (224, 224): [64, 16, 4, 1],
    (512, 512): [361, 100, 25, 9],
    (640, 640): [529, 144, 36, 9],
    (672, 672): [576, 144, 36, 9],
    (256, 704): [260, 65, 21, 8],
    (288, 792): [319, 90, 24, 8],
    (800, 1333): [1392, 360, 96, 24],
    (1024, 2048): [2738, 703, 190, 50],
}


@pytest.mark.parametrize('shape', list(NW_TABLE))
def test_num_windows_table(shape):
    nw = [stage_geometry(*stage_hw(shape, s)).num_windows for s in range(4)]
    assert nw == NW_TABLE[shape]


def test_padding_geometry():
    geo = stage_geometry(*stage_hw((640, 480), 0))  # 160 x 120 tokens
    assert (geo.pad_b, geo.pad_r, geo.padded_height, geo.padded_width) == (1, 6, 161, 126)
    assert geo.padded
    # 672^2 pads nowhere; Swin-T pads nowhere only when both sides are multiples of 224
    assert not any(stage_geometry(*stage_hw((672, 672), s)).padded for s in range(4))
    assert stage_geometry(*stage_hw((448, 448), 3)).num_windows == 4
    assert any(stage_geometry(*stage_hw((640, 640), s)).padded for s in range(4))


K_672 = {  # k = floor(nW (1 - r)) at 672^2
    576: [576, 518, 460, 403, 345, 288, 230, 172, 115],
    144: [144, 129, 115, 100, 86, 72, 57, 43, 28],
    36: [36, 32, 28, 25, 21, 18, 14, 10, 7],
    9: [9, 8, 7, 6, 5, 4, 3, 2, 1],
}
GRID = [0, .1, .2, .3, .4, .5, .6, .7, .8]


@pytest.mark.parametrize('nw', list(K_672))
def test_kept_count_table_672(nw):
    assert [num_kept_windows(nw, r) for r in GRID] == K_672[nw]
    # at 672^2 the reference's float truncation agrees
    assert [num_kept_windows(nw, r, 'reference_float') for r in GRID] == K_672[nw]


@pytest.mark.parametrize('nw,r,exact,ref', [(65, .8, 13, 12), (90, .3, 63, 62), (90, .8, 18, 17),
                                            (260, .8, 52, 51)])
def test_reference_float_is_one_short(nw, r, exact, ref):
    assert num_kept_windows(nw, r) == exact
    assert num_kept_windows(nw, r, 'reference_float') == ref


def test_exact_rule_matches_integer_arithmetic_on_grid():
    for nw in range(1, 800):
        for tenth in range(9):
            assert num_kept_windows(nw, tenth / 10) == nw * (10 - tenth) // 10


def test_k_zero_and_min_keep():
    assert num_kept_windows(1, .1) == 0
    assert num_kept_windows(1, .1, min_keep=1) == 1
    assert num_kept_windows(9, 0., min_keep=1) == 9
    with pytest.raises(ValueError, match='min_keep'):
        num_kept_windows(9, .1, min_keep=2)
    with pytest.raises(ValueError, match='keep_rounding'):
        num_kept_windows(9, .1, 'round')
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        num_kept_windows(9, 1.0)


def _partition(t, ws):
    """Plain Swin window partition of (B, Hp, Wp, ...) -> (B, nW, ws*ws, ...)."""
    b, hp, wp = t.shape[:3]
    rest = t.shape[3:]
    t = t.view(b, hp // ws, ws, wp // ws, ws, *rest).transpose(2, 3)
    return t.reshape(b, (hp // ws) * (wp // ws), ws * ws, *rest)


@pytest.mark.parametrize('hw', [(14, 21), (10, 13)])
@pytest.mark.parametrize('shift', [0, 3])
def test_token_index_equals_pad_roll_partition(hw, shift):
    geo = stage_geometry(*hw, 7)
    x = torch.randn(2, *hw, 5)
    xp = F.pad(x, (0, 0, 0, geo.pad_r, 0, geo.pad_b))
    expect = _partition(torch.roll(xp, (-shift, -shift), (1, 2)), 7)
    idx = token_index(geo, 7, shift)
    assert idx.shape == (geo.num_windows, 49)
    got = xp.reshape(2, -1, 5)[:, idx]
    assert torch.equal(got, expect)


def test_scores_definition_and_padding():
    torch.manual_seed(0)
    geo = stage_geometry(10, 13, 7)
    x = torch.randn(2, 10 * 13, 8)
    m = x.abs().mean(-1).view(2, 10, 13)
    mp = F.pad(m, (0, geo.pad_r, 0, geo.pad_b))
    for shift in (0, 3):
        mw = _partition(torch.roll(mp, (-shift, -shift), (1, 2)), 7)
        expect = mw.square().sum(-1).sqrt()
        got = window_scores(token_scores(x), geo, token_index(geo, 7, shift))
        torch.testing.assert_close(got, expect, rtol=1e-6, atol=0)
    # window_l2: the L2 norm of the whole window tensor, padded tokens 0
    xp = F.pad(x.view(2, 10, 13, 8), (0, 0, 0, geo.pad_r, 0, geo.pad_b))
    expect = _partition(xp, 7).flatten(2).norm(dim=-1)
    got = window_scores(token_scores(x, 'window_l2'), geo, token_index(geo, 7))
    torch.testing.assert_close(got, expect, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match='score_mode'):
        token_scores(x, 'l1')


def test_window_l2_differs_from_default_on_crafted_input():
    # window 0 has one large-magnitude channel, window 1 a flat moderate one: the two scores disagree
    geo = stage_geometry(7, 14, 7)
    x = torch.zeros(1, 7, 14, 4)
    x[0, :, :7, 0] = 3.0
    x[0, :, 7:, :] = 1.0
    x = x.view(1, 98, 4)
    idx = token_index(geo, 7)
    default = rank_windows(window_scores(token_scores(x), geo, idx))
    whole = rank_windows(window_scores(token_scores(x, 'window_l2'), geo, idx))
    assert default.tolist() == [[1, 0]] and whole.tolist() == [[0, 1]]


def test_selection_is_scale_invariant_and_per_image():
    torch.manual_seed(1)
    geo = stage_geometry(14, 21, 7)
    x = torch.randn(3, 14 * 21, 6)
    idx = token_index(geo, 7, 3)
    rank = rank_windows(window_scores(token_scores(x), geo, idx))
    assert torch.equal(rank_windows(window_scores(token_scores(2.5 * x), geo, idx)), rank)
    perm = torch.tensor([2, 0, 1])
    assert torch.equal(rank_windows(window_scores(token_scores(x[perm]), geo, idx)), rank[perm])


def test_rank_is_descending_and_stable():
    scores = torch.tensor([[1., 3., 3., 0., 3.], [0., 0., 0., 0., 0.]])
    assert rank_windows(scores).tolist() == [[1, 2, 4, 0, 3], [0, 1, 2, 3, 4]]
    # stable also past the small-size sorting path
    big = torch.zeros(1, 5000)
    big[0, 4000] = 1
    assert rank_windows(big)[0, :4].tolist() == [4000, 0, 1, 2]


def test_flat_token_index_gathers_and_scatters_windows():
    torch.manual_seed(2)
    geo = stage_geometry(14, 14, 7)
    b, c = 2, 3
    buf = torch.randn(b * geo.padded_height * geo.padded_width, c)
    idx = token_index(geo, 7, 3)
    kept = torch.tensor([[3, 0], [1, 2]])
    flat = flat_token_index(kept, idx, geo.padded_height * geo.padded_width)
    windows = buf.view(b, -1, c)[:, idx]  # (B, nW, 49, C)
    got = buf.index_select(0, flat).view(b, 2, 49, c)
    assert torch.equal(got, torch.stack([windows[i, kept[i]] for i in range(b)]))
    out = buf.clone().index_copy_(0, flat, torch.zeros(flat.numel(), c))
    changed = (out != buf).any(-1).view(b, -1)
    for i in range(b):
        expect = torch.zeros(geo.padded_height * geo.padded_width, dtype=torch.bool)
        expect[idx[kept[i]].flatten()] = True
        assert torch.equal(changed[i], expect)


@pytest.mark.parametrize('hw', [(14, 14), (21, 10)])
def test_shifted_window_mask_matches_swin_construction(hw):
    geo = stage_geometry(*hw, 7)
    hp, wp = geo.padded_height, geo.padded_width
    img = torch.zeros(1, hp, wp)
    cnt = 0
    for hs in (slice(0, -7), slice(-7, -3), slice(-3, None)):
        for wsl in (slice(0, -7), slice(-7, -3), slice(-3, None)):
            img[:, hs, wsl] = cnt
            cnt += 1
    mw = _partition(img, 7)[0]
    expect = (mw[:, None, :] - mw[:, :, None]) != 0
    expect = torch.zeros(expect.shape).masked_fill(expect, -100.0)
    assert torch.equal(shifted_window_mask(geo, 7, 3), expect)

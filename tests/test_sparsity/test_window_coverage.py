"""Object recall of kept windows: hand-made cases with known answers and a per-pixel numpy reference."""
import numpy as np
import pytest
import torch

from mmsparse.sparsity.window_coverage import (kept_token_mask, object_recall, random_windows,
                                               stage_object_recall)
from mmsparse.sparsity.window_selection import stage_geometry


def _reference_recall(kept_ids, objects, stride, ws, shift, hp, wp):
    """Per pixel: its token, the token's position on the rolled map, that window's id."""
    out = []
    for ids, obj in zip(kept_ids, objects):
        ys, xs = np.nonzero(obj)
        ty, tx = ys // stride, xs // stride
        ry, rx = (ty - shift) % hp, (tx - shift) % wp
        win = (ry // ws) * (wp // ws) + rx // ws
        out.append(np.isin(win, ids).mean())
    return np.array(out)


def test_object_in_one_regular_window_has_known_recall():
    # 14x14 tokens of stride 4 (56x56 px), 7x7 windows: four windows of 28x28 px
    geo = stage_geometry(14, 14, 7)
    obj = torch.zeros(1, 56, 56, dtype=torch.bool)
    obj[0, 4:14, 4:14] = True  # 100 px in window 0
    obj[0, 40:48, 30:38] = True  # 64 px in window 3 (rows and columns >= 28)
    res = stage_object_recall([torch.tensor([[0]]), torch.tensor([[3, 0]])], [0, 0], geo, 7, 4, obj)
    # block 0 keeps window 0 (100 of 164 px), block 1 keeps both (164 of 164)
    assert res.kept.item() == pytest.approx((100 / 164 + 1.0) / 2)
    assert res.chance == pytest.approx((1 / 4 + 2 / 4) / 2)


def test_shifted_window_wraps_around_the_map():
    geo = stage_geometry(14, 14, 7)
    obj = torch.zeros(1, 56, 56, dtype=torch.bool)
    obj[0, 0:4, 0:4] = True  # token (0, 0): on the rolled map at (11, 11), shifted window 3
    res = stage_object_recall([torch.tensor([[3]])], [3], geo, 7, 4, obj)
    assert res.kept.item() == 1.0
    res = stage_object_recall([torch.tensor([[0]])], [3], geo, 7, 4, obj)
    assert res.kept.item() == 0.0


@pytest.mark.parametrize('shift', [0, 3])
def test_recall_matches_per_pixel_reference(shift):
    # 18x11 tokens pad to 21x14 (3x2 windows); image 70x42 px at stride 4 (last token rows cropped)
    geo = stage_geometry(18, 11, 7)
    rng = np.random.default_rng(0)
    objects = rng.random((3, 70, 42)) < 0.2
    kept = torch.stack(
        [torch.randperm(geo.num_windows, generator=torch.Generator().manual_seed(i))[:2] for i in range(3)])
    got = stage_object_recall([kept], [shift], geo, 7, 4, torch.from_numpy(objects)).kept
    want = _reference_recall(kept.numpy(), objects, 4, 7, shift, geo.padded_height, geo.padded_width)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_random_baseline_averages_to_chance_and_is_seeded():
    geo = stage_geometry(14, 14, 7)
    obj = torch.zeros(1, 56, 56, dtype=torch.bool)
    obj[0, 4:30, 10:50] = True  # spans several windows unevenly
    sel = [torch.tensor([[0]])]
    a = stage_object_recall(sel, [0], geo, 7, 4, obj, num_draws=4000, seed=1)
    b = stage_object_recall(sel, [0], geo, 7, 4, obj, num_draws=4000, seed=1)
    assert a.random.item() == b.random.item()
    assert a.random.item() == pytest.approx(a.chance, abs=0.02)  # E[recall] = k / nW = 0.25


def test_dense_stage_and_empty_image():
    geo = stage_geometry(14, 14, 7)
    obj = torch.zeros(2, 56, 56, dtype=torch.bool)
    obj[0, 0:8, 0:8] = True
    res = stage_object_recall([None, None], [0, 3], geo, 7, 4, obj)
    assert res.kept[0].item() == 1.0 and res.random[0].item() == 1.0
    assert torch.isnan(res.kept[1]) and torch.isnan(res.random[1])


def test_kept_token_mask_and_random_windows_shapes():
    geo = stage_geometry(14, 14, 7)
    m = kept_token_mask(torch.tensor([[1]]), geo, 7, 0)
    assert m.shape == (1, 14, 14) and m[0, :7, 7:].all() and m.sum() == 49
    r = random_windows(4, 3, 5, torch.Generator().manual_seed(0))
    assert r.shape == (5, 3) and all(len(set(row.tolist())) == 3 for row in r)
    with pytest.raises(ValueError, match='k must be in'):
        random_windows(4, 5, 1)
    with pytest.raises(ValueError, match='same'):
        object_recall(torch.zeros(1, 2, 2, dtype=torch.bool), torch.zeros(1, 3, 3, dtype=torch.bool))

"""Exact rotated-box overlap against a per-pair polygon clipping in numpy and hand-computed areas."""
import math

import numpy as np
import pytest

from mmsparse.evaluation.rotated_iou import box_corners, rotate_iou_exact, rotated_intersection


def _clip_area(p, q):
    """Area of convex ``p`` clipped by convex counter-clockwise ``q`` (Sutherland-Hodgman)."""
    poly = [tuple(v) for v in p]
    for i in range(len(q)):
        a, b = q[i], q[(i + 1) % len(q)]

        def side(v):
            return (b[0] - a[0]) * (v[1] - a[1]) - (b[1] - a[1]) * (v[0] - a[0])

        out = []
        for j in range(len(poly)):
            cur, prev = poly[j], poly[j - 1]
            sc, sp = side(cur), side(prev)
            if sc >= 0:
                if sp < 0:
                    t = sp / (sp - sc)
                    out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
                out.append(cur)
            elif sp >= 0:
                t = sp / (sp - sc)
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
        poly = out
        if not poly:
            return 0.0
    x, y = np.array(poly).T
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_box_against_its_own_copy_has_iou_one():
    boxes = np.array([[1.0, 2.0, 4.0, 2.0, 0.3], [0.0, 0.0, 2.0, 1.0, 0.0], [35.2, 61.7, 1.6, 3.9, -2.1]])
    iou = rotate_iou_exact(boxes, boxes.copy())
    np.testing.assert_allclose(np.diag(iou), 1.0, atol=1e-6)
    # the 3D path's criterion 2 is the intersection area itself
    np.testing.assert_allclose(
        np.diag(rotate_iou_exact(boxes, boxes, 2)), boxes[:, 2] * boxes[:, 3], rtol=1e-6)


def test_hand_computed_overlaps():
    sq = np.array([[0.0, 0.0, 2.0, 2.0, 0.0]])
    # half-shifted copy: overlap 1 x 2 = 2, union 6
    assert rotate_iou_exact(sq, np.array([[1.0, 0.0, 2.0, 2.0, 0.0]]))[0, 0] == pytest.approx(1 / 3)
    # touching along an edge, and apart: nothing in common
    assert rotate_iou_exact(sq, np.array([[2.0, 0.0, 2.0, 2.0, 0.0]]))[0, 0] == 0.0
    assert rotate_iou_exact(sq, np.array([[5.0, 0.0, 2.0, 2.0, 0.0]]))[0, 0] == 0.0
    # the same square turned 45 degrees about its centre: octagon of area 8 (sqrt 2 - 1)
    inter = rotated_intersection(sq, np.array([[0.0, 0.0, 2.0, 2.0, math.pi / 4]]))[0, 0]
    assert inter == pytest.approx(8 * (math.sqrt(2) - 1))
    # a small box inside a big one: criterion 0 divides by the query's area, 1 by the box's
    big, small = np.array([[0.0, 0.0, 4.0, 4.0, 0.2]]), np.array([[0.1, 0.0, 1.0, 1.0, 1.0]])
    assert rotate_iou_exact(big, small, 0)[0, 0] == pytest.approx(1.0)
    assert rotate_iou_exact(big, small, 1)[0, 0] == pytest.approx(1 / 16)


def test_matches_polygon_clipping_on_random_boxes():
    rng = np.random.default_rng(0)
    n, k = 30, 25
    boxes = np.column_stack(
        [rng.uniform(-3, 3, (n, 2)),
         rng.uniform(0.5, 4, (n, 2)),
         rng.uniform(-math.pi, math.pi, n)])
    query = np.column_stack(
        [rng.uniform(-3, 3, (k, 2)),
         rng.uniform(0.5, 4, (k, 2)),
         rng.uniform(-math.pi, math.pi, k)])
    query[:5] = boxes[:5]  # exact copies
    query[5:8, :4] = boxes[5:8, :4]  # same rectangle, other angle
    query[5:8, 4] = boxes[5:8, 4] + np.pi / 2
    got = rotated_intersection(boxes, query)
    pa, pb = box_corners(boxes), box_corners(query)
    want = np.array([[_clip_area(pa[i], pb[j]) for j in range(k)] for i in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    iou = rotate_iou_exact(boxes, query)
    area = boxes[:, 2:4].prod(1)[:, None] + query[:, 2:4].prod(1)[None]
    np.testing.assert_allclose(iou, want / (area - want), rtol=1e-6, atol=1e-7)


def test_corners_follow_mmdet3d_rotation_sense():
    # (u, v) = (w/2, h/2) goes to (cos u + sin v, -sin u + cos v) around the centre
    c = box_corners(np.array([[10.0, 5.0, 2.0, 4.0, 0.5]]))[0]
    u, v = 1.0, 2.0
    want = (10 + math.cos(0.5) * u + math.sin(0.5) * v, 5 - math.sin(0.5) * u + math.cos(0.5) * v)
    assert any(np.allclose(p, want) for p in c)
    x, y = c.T
    assert 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) == pytest.approx(8.0)  # CCW


def test_empty_inputs():
    assert rotate_iou_exact(np.zeros((0, 5)), np.zeros((3, 5))).shape == (0, 3)

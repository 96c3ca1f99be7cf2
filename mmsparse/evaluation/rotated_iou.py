"""Exact overlap of rotated rectangles (KITTI's bird's-eye-view boxes) in float64 numpy.

KITTI's BEV and 3D AP need the intersection area of rotated boxes. mmdet3d computes it with a
numba.cuda kernel that collects the corners of one box lying inside the other plus the edge crossings,
in float32, with strict crossing tests. For boxes whose edges coincide -- a detection equal to its
ground truth is the extreme case -- every corner lies exactly on the other box's border, so whether it
is collected depends on rounding, and numba's CUDA simulator (what runs on a CPU) rounds differently
from a GPU: there a box against its own copy collects only two corners and scores IoU 0, so a perfect
prediction gets 3D AP 0.

Here the area comes from the boundary instead (Green's theorem): the border of ``A n B`` is the part of
A's edges inside B plus the part of B's edges inside A, and ``area = 1/2 * sum (x0 * y1 - x1 * y0)``
over those segments. Clipping a segment to a convex polygon is a 1-D interval problem, so all pairs
are done at once with array operations. Where an edge of A lies on an edge of B, it must be counted
once if the two run the same way (the border is shared) and not at all if they run opposite ways (the
boxes only touch): A's edges therefore count as inside B on a same-direction overlap and B's edges
never count on A's border.
"""
import numpy as np

__all__ = ['box_corners', 'rotated_intersection', 'rotate_iou_exact']


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners of rotated boxes, counter-clockwise: ``(N, 5)`` -> ``(N, 4, 2)`` float64.

    Boxes are ``(x, y, w, h, angle)`` with the angle's sense of mmdet3d's kernel (camera BEV frame:
    a corner ``(u, v)`` relative to the centre goes to ``(cos*u + sin*v, -sin*u + cos*v)``).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    x, y, w, h, a = boxes.T
    u = np.array([-0.5, -0.5, 0.5, 0.5])[None] * w[:, None]
    v = np.array([-0.5, 0.5, 0.5, -0.5])[None] * h[:, None]
    c, s = np.cos(a)[:, None], np.sin(a)[:, None]
    corners = np.stack([c * u + s * v + x[:, None], -s * u + c * v + y[:, None]], axis=-1)
    return corners[:, ::-1]  # the order above is clockwise; rotation keeps the orientation


def _cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _inside_edges_integral(p, q, origin, eps, keep_same_direction):
    """``sum (x0 y1 - x1 y0)`` over the parts of ``p``'s edges inside convex ``q``, per pair.

    Args:
        p: ``(N, 4, 2)`` counter-clockwise polygons whose edges are clipped.
        q: ``(K, 4, 2)`` counter-clockwise convex polygons clipping them.
        origin: ``(N, K, 2)`` per-pair origin (keeps the cross products small).
        eps: border tolerance in coordinate units.
        keep_same_direction: count an edge lying on a same-direction edge of ``q`` as inside.

    Returns:
        ``(N, K)`` float64.
    """
    a = p[:, None, :, None, :]  # (N, 1, 4, 1, 2) edge starts
    d = (np.roll(p, -1, axis=1) - p)[:, None, :, None, :]  # edge vectors
    e = np.roll(q, -1, axis=1) - q
    e_len = np.linalg.norm(e, axis=-1, keepdims=True)
    e_hat = (e / np.where(e_len > 0, e_len, 1.0))[None, :, None, :, :]  # (1, K, 1, 4, 2)
    c0 = _cross(e_hat, a - q[None, :, None, :, :])  # signed distance of the start from q's edge line
    c1 = _cross(e_hat, d)  # its change along the edge (t from 0 to 1)
    d_len = np.linalg.norm(d, axis=-1)
    parallel = np.abs(c1) <= 1e-12 * np.maximum(d_len, 1e-300)
    # Only a (near) parallel edge can lie on q's border: there the tolerance decides in or out. A
    # crossing edge is cut at the exact crossing (threshold 0), so no area is lost to the tolerance.
    thr = np.where(parallel, eps, 0.0)
    if keep_same_direction:
        thr = np.where(parallel & ((e_hat * d).sum(-1) > 0), -eps, thr)
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (thr - c0) / c1  # where c0 + t * c1 crosses the threshold
    lo = np.where(~parallel & (c1 > 0), t, -np.inf).max(-1)
    hi = np.where(~parallel & (c1 < 0), t, np.inf).min(-1)
    outside = (parallel & (c0 < thr)).any(-1)
    t0, t1 = np.maximum(lo, 0.0), np.minimum(hi, 1.0)  # (N, K, 4)
    keep = (t1 > t0) & ~outside
    a, d = a[..., 0, :] - origin[:, :, None, :], d[..., 0, :]
    p0 = a + t0[..., None] * d
    p1 = a + t1[..., None] * d
    return np.where(keep, _cross(p0, p1), 0.0).sum(-1)


def rotated_intersection(boxes: np.ndarray, query_boxes: np.ndarray) -> np.ndarray:
    """Intersection areas of every pair: ``(N, 5)``, ``(K, 5)`` -> ``(N, K)`` float64."""
    pa, pb = box_corners(boxes), box_corners(query_boxes)
    n, k = len(pa), len(pb)
    if n == 0 or k == 0:
        return np.zeros((n, k))
    origin = np.broadcast_to(pa.mean(1)[:, None, :], (n, k, 2))
    scale = max(1.0, float(np.abs(pa).max()), float(np.abs(pb).max()))
    eps = 1e-9 * scale
    ab = _inside_edges_integral(pa, pb, origin, eps, keep_same_direction=True)
    ba = _inside_edges_integral(pb, pa, origin.transpose(1, 0, 2), eps, keep_same_direction=False)
    return np.clip(0.5 * (ab + ba.T), 0.0, None)


def rotate_iou_exact(boxes: np.ndarray,
                     query_boxes: np.ndarray,
                     criterion: int = -1,
                     device_id: int = 0) -> np.ndarray:
    """Drop-in for mmdet3d's ``rotate_iou_gpu_eval``: ``(N, 5)``, ``(K, 5)`` -> ``(N, K)`` float32.

    ``criterion``: -1 IoU, 0 intersection over the query box's area, 1 over the box's area, any other
    value the intersection area itself (what KITTI's 3D overlap multiplies by the height overlap).
    ``device_id`` is accepted for the same signature and ignored. Pairs whose union (or divisor) is 0
    score 0.
    """
    del device_id
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    query_boxes = np.asarray(query_boxes, dtype=np.float64).reshape(-1, 5)
    inter = rotated_intersection(boxes, query_boxes)
    area_b = (boxes[:, 2] * boxes[:, 3])[:, None]
    area_q = (query_boxes[:, 2] * query_boxes[:, 3])[None, :]
    if criterion == -1:
        div = area_b + area_q - inter
    elif criterion == 0:
        div = np.broadcast_to(area_q, inter.shape)
    elif criterion == 1:
        div = np.broadcast_to(area_b, inter.shape)
    else:
        return inter.astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        out = np.where(div > 0, inter / np.where(div > 0, div, 1.0), 0.0)
    return out.astype(np.float32)

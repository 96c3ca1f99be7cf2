"""Coloured 2D shapes as polygons, and their rasterisation.

Coordinates follow the COCO convention: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so a
polygon written to a COCO json and decoded by pycocotools covers the same pixels that
:func:`fill_polygon` painted (up to boundary pixels).
"""
import math
from typing import List, Sequence, Tuple

import numpy as np

# Saturated, well separated RGB colours: a small CNN tells them apart at 32x32 after JPEG.
COLORS = {
    'red': (220, 40, 40),
    'green': (40, 200, 60),
    'blue': (40, 80, 235),
    'yellow': (240, 220, 40),
    'magenta': (220, 50, 220),
    'cyan': (40, 220, 230),
    'orange': (250, 140, 20),
    'white': (245, 245, 245),
}

# Every shape fits inside the unit circle, so a shape of radius r never leaves its bounding circle
# (which is what scene placement uses to keep instances disjoint).
SHAPES = ('circle', 'square', 'triangle', 'star', 'cross', 'hexagon', 'pentagon', 'semicircle')


def _regular(n: int, phase: float = math.pi / 2) -> np.ndarray:
    """Vertices of a regular n-gon on the unit circle, first vertex at ``phase``; (n, 2)."""
    a = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(a), -np.sin(a)], axis=1)


def _unit_shape(shape: str) -> np.ndarray:
    """Unit-radius polygon of ``shape`` centred at the origin, image axes (y down); (N, 2)."""
    if shape == 'circle':
        return _regular(32)
    if shape == 'square':
        return _regular(4, math.pi / 4)  # axis aligned, half-diagonal 1
    if shape in ('triangle', 'pentagon', 'hexagon'):
        return _regular({'triangle': 3, 'pentagon': 5, 'hexagon': 6}[shape])
    if shape == 'star':
        outer, inner = _regular(5), _regular(5, math.pi / 2 + math.pi / 5) * 0.45
        return np.stack([outer, inner], axis=1).reshape(10, 2)
    if shape == 'cross':
        a, b = 0.33, 0.94  # arm half-width, arm length (tip corner at radius 0.996)
        return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b], [-a, a],
                         [-b, a], [-b, -a], [-a, -a]])
    if shape == 'semicircle':
        a = np.linspace(0, math.pi, 17)
        # Shift down by 0.3 so the half disc is centred in its bounding circle.
        return np.stack([np.cos(a), -np.sin(a) + 0.3], axis=1) / 1.05
    raise ValueError(f'shape must be one of {SHAPES}, got {shape!r}')


def shape_polygon(shape: str, center: Sequence[float], radius: float, angle: float = 0.0) -> np.ndarray:
    """Polygon of a shape in pixel coordinates.

    Args:
        shape: one of :data:`SHAPES`.
        center: ``(x, y)`` in pixels (COCO convention, pixel i spans [i, i+1)).
        radius: bounding-circle radius in pixels; every vertex lies within it.
        angle: rotation in radians, clockwise on screen (y points down).

    Returns:
        ``(N, 2)`` float64 vertices ``(x, y)``.
    """
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # row vectors: (1, 0) -> (cos, sin)
    return _unit_shape(shape) @ rot * radius + np.asarray(center, dtype=np.float64)


def polygon_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels whose centre lies inside ``polygon`` (even-odd rule); ``(H, W)`` bool.

    The centre rule makes the pixel count equal the polygon's area up to boundary noise, as
    pycocotools' decoding does (cv2.fillPoly paints whole boundary pixels and overshoots by about
    half a perimeter).

    Args:
        polygon: ``(N, 2)`` vertices in COCO pixel coordinates (pixel i spans [i, i+1)).
        height, width: mask size.
    """
    mask = np.zeros((height, width), bool)
    (x0, y0), (x1, y1) = np.floor(polygon.min(0)), np.ceil(polygon.max(0))
    x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height)
    if x0 >= x1 or y0 >= y1:
        return mask
    px, py = np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5
    inside = np.zeros((y1 - y0, x1 - x0), bool)
    xa, ya = polygon[:, 0], polygon[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    for i in range(len(polygon)):
        # Half-open test in y: each edge crossing a pixel-centre row counts exactly once.
        rows = np.nonzero((ya[i] <= py) != (yb[i] <= py))[0]
        if rows.size:
            x_cross = xa[i] + (py[rows] - ya[i]) / (yb[i] - ya[i]) * (xb[i] - xa[i])
            inside[rows] ^= px[None, :] < x_cross[:, None]
    mask[y0:y1, x0:x1] = inside
    return mask


def fill_polygon(canvas: np.ndarray, polygon: np.ndarray, value) -> np.ndarray:
    """Paint ``polygon`` into ``canvas`` in place (no anti-aliasing) and return it.

    Args:
        canvas: ``(H, W)`` or ``(H, W, C)`` uint8 array.
        polygon: ``(N, 2)`` vertices in COCO pixel coordinates; painted pixels are
            :func:`polygon_mask`'s.
        value: fill value (scalar or per-channel tuple).
    """
    canvas[polygon_mask(polygon, canvas.shape[0], canvas.shape[1])] = value
    return canvas


def class_catalogue(num_classes: int) -> List[Tuple[str, str]]:
    """The first ``num_classes`` (colour, shape) pairs, most distinct first.

    Pair k uses shape ``k % 8`` and colour ``(k % 8 + k // 8) % 8`` (a Latin square), so the first 8
    classes differ in both shape and colour and all 64 pairs are unique.

    Returns:
        list of ``(colour_name, shape_name)``.
    """
    n_s, n_c = len(SHAPES), len(COLORS)
    if not 1 <= num_classes <= n_s * n_c:
        raise ValueError(f'num_classes must be in [1, {n_s * n_c}], got {num_classes}')
    colors = list(COLORS)
    return [(colors[(k % n_s + k // n_s) % n_c], SHAPES[k % n_s]) for k in range(num_classes)]

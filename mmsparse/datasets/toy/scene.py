"""Random 2D scenes of coloured shapes with per-instance polygon, mask, box and label.

Instances never overlap (their bounding circles are disjoint), so each polygon is exactly the
visible region of its instance: COCO polygons, semantic label maps and class labels all agree.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .shapes import COLORS, polygon_mask, shape_polygon


@dataclass
class ToyInstance:
    """One drawn shape.

    Attributes:
        label: index into the ``classes`` list passed to :func:`random_scene`.
        polygon: ``(N, 2)`` float vertices ``(x, y)`` in COCO pixel coordinates.
        mask: ``(H, W)`` bool, the pixels painted for this instance.
    """
    label: int
    polygon: np.ndarray
    mask: np.ndarray

    @property
    def bbox_xyxy(self) -> Tuple[float, float, float, float]:
        """Tight box of the polygon, ``(x1, y1, x2, y2)`` in pixels."""
        (x1, y1), (x2, y2) = self.polygon.min(0), self.polygon.max(0)
        return float(x1), float(y1), float(x2), float(y2)

    @property
    def area(self) -> int:
        """Number of painted pixels."""
        return int(self.mask.sum())


def draw_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Dark grey background with a random vertical gradient; ``(H, W, 3)`` uint8 RGB.

    Kept dark and unsaturated so that every colour in :data:`COLORS` (white included) stands out.
    """
    top, bottom = rng.uniform(25, 95, size=2)
    ramp = np.linspace(top, bottom, height)[:, None, None]
    tint = rng.uniform(-8, 8, size=3)[None, None, :]
    return np.clip(np.broadcast_to(ramp + tint, (height, width, 3)), 0, 255).astype(np.uint8)


def _place_circles(rng: np.random.Generator, height: int, width: int, num: int,
                   radius_range: Tuple[float, float], max_tries: int) -> List[Tuple[float, ...]]:
    """Up to ``num`` disjoint circles ``(cx, cy, r)`` inside the image, by rejection sampling."""
    short = min(height, width)
    circles = []
    for _ in range(max_tries):
        if len(circles) == num:
            break
        r = rng.uniform(*radius_range) * short
        cx, cy = rng.uniform(r + 1, width - r - 1), rng.uniform(r + 1, height - r - 1)
        # A 2-pixel gap keeps masks disjoint after rounding.
        if all(math.hypot(cx - x, cy - y) > r + q + 2 for x, y, q in circles):
            circles.append((cx, cy, r))
    return circles


def random_scene(rng: np.random.Generator,
                 height: int,
                 width: int,
                 classes: Sequence[Tuple[str, str]],
                 num_objects: Tuple[int, int] = (1, 4),
                 radius_range: Tuple[float, float] = (0.12, 0.25),
                 labels: Optional[Sequence[int]] = None,
                 noise_std: float = 4.0,
                 max_tries: int = 200) -> Tuple[np.ndarray, List[ToyInstance]]:
    """Draw a random scene of non-overlapping shapes.

    Args:
        rng: the only source of randomness (same state -> same scene).
        height, width: image size in pixels.
        classes: ``(colour_name, shape_name)`` per class id.
        num_objects: inclusive ``(min, max)`` number of instances; fewer are drawn only if they do
            not fit after ``max_tries`` placements (at least one always fits for radius <= 0.45).
        radius_range: bounding-circle radius as a fraction of ``min(height, width)``.
        labels: class ids to draw, overriding the random choice (e.g. ``[k]`` for classification).
        noise_std: std of the Gaussian pixel noise added to the whole image (grey levels).

    Returns:
        ``(image, instances)``: ``(H, W, 3)`` uint8 RGB and one :class:`ToyInstance` per shape.
    """
    if not 0 < radius_range[0] <= radius_range[1] <= 0.45:
        raise ValueError(f'radius_range must satisfy 0 < lo <= hi <= 0.45, got {radius_range}')
    if not 1 <= num_objects[0] <= num_objects[1]:
        raise ValueError(f'num_objects must satisfy 1 <= lo <= hi, got {num_objects}')
    image = draw_background(rng, height, width)
    if labels is None:
        n = int(rng.integers(num_objects[0], num_objects[1] + 1))
        labels = rng.integers(0, len(classes), size=n).tolist()
    circles = _place_circles(rng, height, width, len(labels), radius_range, max_tries)
    instances = []
    for label, (cx, cy, r) in zip(labels, circles):
        color_name, shape = classes[label]
        polygon = shape_polygon(shape, (cx, cy), r, angle=rng.uniform(-math.pi, math.pi))
        mask = polygon_mask(polygon, height, width)
        image[mask] = COLORS[color_name]
        instances.append(ToyInstance(int(label), polygon, mask))
    if noise_std > 0:
        noise = rng.normal(0.0, noise_std, size=image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return image, instances

"""The shared drawing code: shape polygons, their rasterisation and the class catalogue."""
import numpy as np
import pytest

from mmsparse.datasets.toy import SHAPES, class_catalogue, polygon_mask, random_scene, shape_polygon


def _shoelace(poly):
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


@pytest.mark.parametrize('shape', SHAPES)
def test_shapes_fit_their_circle_and_rasterise_to_their_area(shape):
    poly = shape_polygon(shape, (40.3, 41.7), 25.0, angle=0.7)
    assert np.hypot(*(poly - [40.3, 41.7]).T).max() <= 25.0 + 1e-9
    # Pixel-centre rule: the pixel count is the polygon's area up to boundary noise (~1 %).
    area = _shoelace(poly)
    assert abs(polygon_mask(poly, 96, 96).sum() - area) < 0.03 * area


def test_axis_aligned_square_is_exact():
    poly = np.array([[10, 10], [20, 10], [20, 20], [10, 20]], float)
    mask = polygon_mask(poly, 32, 32)
    assert mask.sum() == 100 and mask[10:20, 10:20].all()


def test_catalogue_and_scene():
    pairs = class_catalogue(64)
    assert len(set(pairs)) == 64
    assert len({c for c, _ in pairs[:8]}) == 8 and len({s for _, s in pairs[:8]}) == 8
    image, instances = random_scene(
        np.random.default_rng(0), 64, 64, pairs[:3], num_objects=(4, 4), radius_range=(0.1, 0.15))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and len(instances) == 4
    masks = np.stack([inst.mask for inst in instances])
    assert masks.sum(0).max() == 1  # instances never overlap
    with pytest.raises(ValueError, match='num_classes must be in'):
        class_catalogue(0)
    with pytest.raises(ValueError, match='radius_range'):
        random_scene(np.random.default_rng(0), 64, 64, pairs[:3], radius_range=(0.1, 0.5))
    with pytest.raises(ValueError, match='shape must be one of'):
        shape_polygon('blob', (0, 0), 1.0)

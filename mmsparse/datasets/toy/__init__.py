"""Procedural toy scenes shared by every ``tools/dataset_converters/make_toy_*.py`` generator.

Only numpy, cv2 and PIL are used here (no OpenMMLab import), so the generators run before or without
the heavy packages. The generators differ only in the file format they write:

- :mod:`.shapes`: coloured 2D shapes as polygons and their rasterisation.
- :mod:`.scene`: random scenes of non-overlapping shapes with per-instance polygon, mask and box.
- :mod:`.box3d`: KITTI camera-frame 3D boxes, their projection and a flat-shaded renderer.
- :mod:`.io`: deterministic image encoding; :mod:`.cli`: argument checks.
"""
from .box3d import (KITTI_CLASS_SPECS, Box3DInstance, box3d_corners, make_cam2img, project_points,
                    random_mono3d_scene)
from .cli import check_ranges
from .io import write_image
from .scene import ToyInstance, draw_background, random_scene
from .shapes import COLORS, SHAPES, class_catalogue, fill_polygon, polygon_mask, shape_polygon

__all__ = [
    'COLORS', 'SHAPES', 'class_catalogue', 'fill_polygon', 'polygon_mask', 'shape_polygon', 'ToyInstance',
    'draw_background', 'random_scene', 'KITTI_CLASS_SPECS', 'Box3DInstance', 'box3d_corners', 'make_cam2img',
    'project_points', 'random_mono3d_scene', 'write_image', 'check_ranges'
]

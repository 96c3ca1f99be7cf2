"""KITTI camera-frame 3D boxes: corners, projection and a flat-shaded renderer for mono-3D scenes.

Camera frame as in KITTI / mmdet3d ``CameraInstance3DBoxes``: x right, y down, z forward, metres. A
box is ``[x, y, z, l, h, w, ry]`` with ``(x, y, z)`` the **bottom** centre, ``l`` along the local x
axis (the heading), ``h`` along -y and ``ry`` the rotation about the y axis.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .shapes import fill_polygon

# Typical KITTI sizes (l, h, w) in metres and a distinct colour per class.
KITTI_CLASS_SPECS = {
    'Pedestrian': dict(dims=(0.8, 1.75, 0.6), color=(225, 50, 50)),
    'Cyclist': dict(dims=(1.76, 1.7, 0.6), color=(50, 200, 60)),
    'Car': dict(dims=(3.9, 1.56, 1.6), color=(50, 100, 240)),
}
CAMERA_HEIGHT = 1.65  # metres above the ground plane (KITTI's cam2), so objects stand at y = 1.65

# Corner k has local offsets given by its bits (ix, iy, iz):
# x in {-l/2, +l/2}, y in {-h, 0}, z in {-w/2, +w/2}.
_FACES = {  # each a cyclic quad of corner ids
    'back': (0, 1, 3, 2),
    'front': (4, 5, 7, 6),
    'top': (0, 1, 5, 4),
    'bottom': (2, 3, 7, 6),
    'left': (0, 2, 6, 4),
    'right': (1, 3, 7, 5)
}
# Brightness per face; the front (heading) face is tinted towards white so the yaw is observable.
_SHADE = {'top': 1.0, 'front': 0.95, 'back': 0.6, 'left': 0.75, 'right': 0.75, 'bottom': 0.5}


def box3d_corners(box: Sequence[float]) -> np.ndarray:
    """The 8 corners of a camera-frame box; ``(8, 3)`` metres, corner k from bits (ix, iy, iz)."""
    x, y, z, l, h, w, ry = (float(v) for v in box)
    bits = (np.arange(8)[:, None] >> np.array([2, 1, 0])) & 1
    local = (bits - np.array([0.5, 1.0, 0.5])) * np.array([l, h, w])
    c, s = math.cos(ry), math.sin(ry)
    # Rotation about y as in KITTI: x' = x cos + z sin, z' = -x sin + z cos.
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return local @ rot.T + np.array([x, y, z])


def project_points(points: np.ndarray, cam2img: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points.

    Args:
        points: ``(N, 3)`` metres, z > 0.
        cam2img: ``(3, 3)``, ``(3, 4)`` or ``(4, 4)`` intrinsics; only the upper-left 3x3 is used
            (KITTI's P2 translation column is zero here).

    Returns:
        ``(N, 2)`` pixel coordinates ``(u, v)``, pixel centres at integers (OpenCV convention).
    """
    k = np.asarray(cam2img, dtype=np.float64)[:3, :3]
    uvw = np.asarray(points, dtype=np.float64) @ k.T
    return uvw[:, :2] / uvw[:, 2:3]


def make_cam2img(width: int, height: int, focal: float) -> np.ndarray:
    """``(4, 4)`` intrinsics: fx = fy = ``focal``, cx = W/2, horizon (cy) at 30 % of the height.

    A high horizon leaves room below it for the ground, where nearby objects stand.
    """
    k = np.eye(4)
    k[0, 0] = k[1, 1] = focal
    k[0, 2], k[1, 2] = width / 2.0, 0.3 * height
    return k


@dataclass
class Box3DInstance:
    """One rendered 3D box.

    Attributes:
        label: index into the ``classes`` passed to :func:`random_mono3d_scene`.
        box: ``(7,)`` ``[x, y, z, l, h, w, ry]``, camera frame, bottom centre.
        bbox: ``(4,)`` 2D box ``[x1, y1, x2, y2]`` of the projected corners, pixels.
        center_2d: ``(2,)`` projection of the gravity centre ``(x, y - h/2, z)``.
        depth: z of the gravity centre, metres.
    """
    label: int
    box: np.ndarray
    bbox: np.ndarray
    center_2d: np.ndarray
    depth: float

    @property
    def alpha(self) -> float:
        """KITTI observation angle ``ry - atan2(x, z)`` wrapped to [-pi, pi)."""
        a = self.box[6] - math.atan2(self.box[0], self.box[2])
        return float((a + math.pi) % (2 * math.pi) - math.pi)


def _draw_box(image: np.ndarray, box: np.ndarray, cam2img: np.ndarray, color) -> None:
    """Paint the camera-facing faces of ``box`` (a convex solid, so they never overlap)."""
    corners = box3d_corners(box)
    gravity = corners.mean(0)
    uv = project_points(corners, cam2img) + 0.5  # fill_polygon takes COCO pixel coordinates
    for name, ids in _FACES.items():
        face = corners[list(ids)]
        normal = face.mean(0) - gravity
        if np.dot(normal, face.mean(0)) >= 0:  # facing away from the camera at the origin
            continue
        rgb = np.asarray(color, np.float64) * _SHADE[name]
        if name == 'front':
            rgb = 0.5 * rgb + 0.5 * 255
        fill_polygon(image, uv[list(ids)], np.clip(rgb, 0, 255).astype(np.uint8))


def _background(height: int, width: int, horizon: float) -> np.ndarray:
    """Light sky above the horizon row, darkening grey ground below; ``(H, W, 3)`` uint8 RGB."""
    rows = np.arange(height)[:, None]
    sky = np.array([150, 180, 205]) + 0 * rows
    t = np.clip((rows - horizon) / max(height - horizon, 1), 0, 1)
    ground = np.array([110, 105, 100]) - 50 * t
    img = np.where(rows < horizon, sky, ground)[:, None, :]
    return np.broadcast_to(img, (height, width, 3)).astype(np.uint8).copy()


def random_mono3d_scene(rng: np.random.Generator,
                        width: int,
                        height: int,
                        cam2img: np.ndarray,
                        classes: Sequence[str] = ('Pedestrian', 'Cyclist', 'Car'),
                        num_objects: Tuple[int, int] = (1, 3),
                        depth_range: Tuple[float, float] = (7.0, 25.0),
                        min_height_px: float = 25.0,
                        noise_std: float = 3.0,
                        max_tries: int = 300,
                        labels: Optional[Sequence[int]] = None,
                        yaw_spread: Optional[float] = None,
                        size_jitter: float = 0.08) -> Tuple[np.ndarray, List[Box3DInstance]]:
    """Render 3D boxes standing on the ground plane, fully visible and with disjoint 2D boxes.

    Every object is untruncated and unoccluded (KITTI "easy" if its 2D box is at least 40 px high).

    Args:
        rng: the only source of randomness.
        width, height: image size in pixels.
        cam2img: intrinsics as for :func:`project_points`.
        classes: names from :data:`KITTI_CLASS_SPECS`, indexed by ``Box3DInstance.label``.
        num_objects: inclusive ``(min, max)``; fewer only when placement fails ``max_tries`` times.
        depth_range: ``(near, far)`` of the bottom-centre z, metres.
        min_height_px: smallest 2D box height kept (KITTI ignores boxes under 25 px).
        noise_std: std of the Gaussian pixel noise added to the whole image (grey levels).
        max_tries: placements tried before giving up on reaching the drawn number of objects.
        labels: class ids to draw from, uniformly (e.g. ``[2]``: only cars); ``None``: every class.
        yaw_spread: ``None`` draws ``ry`` uniformly in [-pi, pi). Else, radians in [0, pi/2]: the box
            is heading along the optical axis, towards or away from the camera (``ry = -pi/2`` or
            ``+pi/2``, as cars on a road seen from a car), turned by up to ``yaw_spread`` either way.
        size_jitter: each of ``l, h, w`` is the class's typical size times a factor drawn in
            ``[1 - size_jitter, 1 + size_jitter]``, in [0, 0.5). A smaller jitter makes the apparent size a
            sharper depth cue for a monocular detector.

    Returns:
        ``(image, instances)``: ``(H, W, 3)`` uint8 RGB and the boxes drawn, far to near.
    """
    unknown = [c for c in classes if c not in KITTI_CLASS_SPECS]
    if unknown:
        raise ValueError(f'classes must be among {sorted(KITTI_CLASS_SPECS)}, got {unknown}')
    if not 0 < depth_range[0] < depth_range[1]:
        raise ValueError(f'depth_range must satisfy 0 < near < far, got {depth_range}')
    if not 1 <= num_objects[0] <= num_objects[1]:
        raise ValueError(f'num_objects must satisfy 1 <= lo <= hi, got {num_objects}')
    if labels is not None and (not labels or any(not 0 <= k < len(classes) for k in labels)):
        raise ValueError(f'labels must be a non-empty list of ids in [0, {len(classes) - 1}], got {labels}')
    if yaw_spread is not None and not 0 <= yaw_spread <= math.pi / 2:
        raise ValueError(f'yaw_spread must be in [0, pi/2] radians, got {yaw_spread}')
    if not 0 <= size_jitter < 0.5:
        raise ValueError(f'size_jitter must be in [0, 0.5), got {size_jitter}')
    k = np.asarray(cam2img, dtype=np.float64)
    fx, cx = k[0, 0], k[0, 2]
    wanted = int(rng.integers(num_objects[0], num_objects[1] + 1))
    instances: List[Box3DInstance] = []
    for _ in range(max_tries):
        if len(instances) == wanted:
            break
        if labels is None:
            label = int(rng.integers(len(classes)))
        else:
            label = int(labels[rng.integers(len(labels))])
        dims = np.array(KITTI_CLASS_SPECS[classes[label]]['dims']) * rng.uniform(
            1 - size_jitter, 1 + size_jitter, 3)
        z = rng.uniform(*depth_range)
        x = (rng.uniform(0.08, 0.92) * width - cx) * z / fx
        if yaw_spread is None:
            ry = rng.uniform(-math.pi, math.pi)
        else:  # ry = -pi/2 points the local x axis (the heading) along +z, away from the camera
            ry = rng.choice([-0.5, 0.5]) * math.pi + rng.uniform(-yaw_spread, yaw_spread)
        box = np.array([x, CAMERA_HEIGHT, z, *dims, ry])
        corners = box3d_corners(box)
        if corners[:, 2].min() < 0.5:
            continue
        uv = project_points(corners, k)
        bbox = np.concatenate([uv.min(0), uv.max(0)])
        inside = bbox[0] >= 0 and bbox[1] >= 0 and bbox[2] <= width - 1 and bbox[3] <= height - 1
        if not inside or bbox[3] - bbox[1] < min_height_px:
            continue
        if any(bbox[0] < o.bbox[2] + 2 and o.bbox[0] < bbox[2] + 2 and bbox[1] < o.bbox[3] +
               2 and o.bbox[1] < bbox[3] + 2 for o in instances):
            continue
        gravity = box[:3] - np.array([0.0, dims[1] / 2, 0.0])
        instances.append(
            Box3DInstance(label, box, bbox,
                          project_points(gravity[None], k)[0], float(gravity[2])))
    instances.sort(key=lambda o: -o.depth)
    image = _background(height, width, k[1, 2])
    for inst in instances:
        _draw_box(image, inst.box, k, KITTI_CLASS_SPECS[classes[inst.label]]['color'])
    if noise_std > 0:
        image = np.clip(image + rng.normal(0.0, noise_std, image.shape), 0, 255).astype(np.uint8)
    return image, instances

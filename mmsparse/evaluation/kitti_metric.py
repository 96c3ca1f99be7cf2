"""mmdet3d's ``KittiMetric`` with exact rotated-box overlaps (``mmsparse.KittiMetric``).

KITTI's BEV and 3D AP rest on the overlap of rotated boxes. mmdet3d computes it with a numba.cuda
kernel, which on a machine without CUDA runs on numba's simulator and there scores a box against its
own copy 0 (see :mod:`mmsparse.evaluation.rotated_iou`), so even a perfect prediction gets BEV/3D AP 0.
This metric runs mmdet3d's whole evaluation unchanged and only swaps, while it computes, the two overlap
functions of ``mmdet3d.evaluation.functional.kitti_utils.eval`` for exact float64 ones.
"""
from contextlib import contextmanager

from mmdet3d.evaluation.functional.kitti_utils import eval as kitti_eval_module
from mmdet3d.evaluation.metrics import KittiMetric as Mmdet3dKittiMetric

from mmsparse.registry import METRICS
from .rotated_iou import rotate_iou_exact

__all__ = ['KittiMetric', 'exact_rotated_overlaps', 'ROTATED_IOU_MODES']

ROTATED_IOU_MODES = ('exact', 'mmdet3d')


def _bev_box_overlap(boxes, qboxes, criterion=-1):
    """BEV overlap of ``(N, 5)`` and ``(K, 5)`` camera-frame boxes ``(x, z, l, w, yaw)``: ``(N, K)``."""
    return rotate_iou_exact(boxes, qboxes, criterion)


def _d3_box_overlap(boxes, qboxes, criterion=-1):
    """3D overlap of ``(N, 7)`` and ``(K, 7)`` camera boxes: BEV intersection area times the height
    overlap, by mmdet3d's own CPU kernel (the only part that used the CUDA one is the BEV area)."""
    inter = rotate_iou_exact(boxes[:, [0, 2, 3, 5, 6]], qboxes[:, [0, 2, 3, 5, 6]], 2)
    kitti_eval_module.d3_box_overlap_kernel(boxes, qboxes, inter, criterion)
    return inter


@contextmanager
def exact_rotated_overlaps():
    """Within the block, KITTI evaluation uses the exact BEV/3D overlaps (restored on exit)."""
    saved = kitti_eval_module.bev_box_overlap, kitti_eval_module.d3_box_overlap
    kitti_eval_module.bev_box_overlap, kitti_eval_module.d3_box_overlap = _bev_box_overlap, _d3_box_overlap
    try:
        yield
    finally:
        kitti_eval_module.bev_box_overlap, kitti_eval_module.d3_box_overlap = saved


@METRICS.register_module()
class KittiMetric(Mmdet3dKittiMetric):
    """KITTI AP as mmdet3d computes it, with exact rotated-box overlaps.

    Args:
        rotated_iou: ``'exact'`` (float64 boundary clipping, on any device) or ``'mmdet3d'`` (mmdet3d's
            numba.cuda kernel, e.g. to compare with numbers computed by it).
        *args, **kwargs: those of mmdet3d's ``KittiMetric``.
    """

    def __init__(self, *args, rotated_iou: str = 'exact', **kwargs):
        if rotated_iou not in ROTATED_IOU_MODES:
            raise ValueError(f'rotated_iou must be one of {ROTATED_IOU_MODES}, got {rotated_iou!r}')
        super().__init__(*args, **kwargs)
        self.rotated_iou = rotated_iou

    def compute_metrics(self, results):
        if self.rotated_iou == 'mmdet3d':
            return super().compute_metrics(results)
        with exact_rotated_overlaps():
            return super().compute_metrics(results)

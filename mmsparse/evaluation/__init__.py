"""Evaluation plug-ins. ``mmsparse.KittiMetric`` (exact rotated-box overlaps) needs mmdet3d, which is
optional: without it this package stays empty."""
import importlib.util

__all__ = []

if importlib.util.find_spec('mmdet3d') is not None:
    from .kitti_metric import KittiMetric  # noqa: F401
    __all__.append('KittiMetric')

"""A ``test_step`` batch of random images with the metainfo each task's post-processing reads.

Used to time whole models (``tools/analysis_tools/benchmark_model.py``) without a dataset: the images
are uint8 noise of the requested size, so the data preprocessor, backbone, neck, heads and
post-processing all run as on real data (the number of boxes surviving NMS differs, see the docs).
"""
import math

import torch

__all__ = ['synthetic_batch']

# a KITTI-like camera (focal 721.5 px): the mono-3D head lifts boxes with it
_KITTI_CAM2IMG = [[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
                  [0.0, 0.0, 1.0, 0.002745884], [0.0, 0.0, 0.0, 1.0]]


def synthetic_batch(task: str, shape, batch: int = 1, seed: int = 0) -> dict:
    """``dict(inputs, data_samples)`` for ``model.test_step`` of ``task`` (``cls|seg|det|mono3d``).

    Args:
        shape: ``(H, W)`` image size in pixels, as the test pipeline would deliver it (after resize,
            before the data preprocessor's padding).
    """
    h, w = int(shape[0]), int(shape[1])
    g = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for _ in range(batch)]
    meta = dict(
        img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0), img_path=f'synthetic_{h}x{w}.jpg')
    if task == 'cls':
        from mmpretrain.structures import DataSample
        samples = [DataSample(metainfo=dict(meta)) for _ in range(batch)]
    elif task == 'seg':
        from mmseg.structures import SegDataSample
        samples = [SegDataSample(metainfo=dict(meta, pad_shape=(h, w), flip=False)) for _ in range(batch)]
    elif task == 'det':
        from mmdet.structures import DetDataSample
        samples = [DetDataSample(metainfo=dict(meta, pad_shape=(h, w))) for _ in range(batch)]
    elif task == 'mono3d':
        from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
        from mmdet3d.structures.bbox_3d import Box3DMode
        samples = [
            Det3DDataSample(
                metainfo=dict(
                    meta,
                    pad_shape=(h, w),
                    cam2img=_KITTI_CAM2IMG,
                    box_type_3d=CameraInstance3DBoxes,
                    box_mode_3d=Box3DMode.CAM)) for _ in range(batch)
        ]
        return dict(inputs=dict(img=images), data_samples=samples)
    else:
        raise ValueError(f"task must be one of 'cls', 'seg', 'det', 'mono3d', got {task!r}")
    return dict(inputs=images, data_samples=samples)


def padded_shape(shape, divisor: int = 32):
    """``(H, W)`` rounded up to ``divisor`` (the detectors' data preprocessors pad so)."""
    return tuple(int(math.ceil(s / divisor) * divisor) for s in shape)

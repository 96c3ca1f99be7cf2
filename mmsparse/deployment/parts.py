"""The part of a task model that goes into an ONNX file, as a plain ``nn.Module`` of one tensor input.

Every part takes the *preprocessed* batch ``(B, 3, H, W)`` float32 (mean/std-normalised, RGB order,
padded as the task's data preprocessor pads): normalisation and resizing stay outside the graph, as in
other OpenMMLab deployments. The parts:

* ``backbone``: the backbone's feature maps, one ``(B, C_s, H_s, W_s)`` per out index;
* ``features``: backbone + neck (FPN) maps, for detectors whose heads end in NMS / RoIAlign;
* ``model``: the whole network for the classifier (``(B, num_classes)`` logits) and the segmentor
  (``(B, num_classes, H, W)`` logits resized to the input, as ``EncoderDecoder.encode_decode``).
"""
from typing import Tuple

import torch
from torch import nn

from .model_builder import task_of

__all__ = ['PARTS', 'export_part', 'BackbonePart', 'FeaturesPart', 'ClassifierPart', 'SegmentorPart']

PARTS = ('backbone', 'features', 'model')


class BackbonePart(nn.Module):
    """``(B, 3, H, W) -> tuple`` of backbone maps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone = getattr(model, 'backbone', model)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.backbone(x))


class FeaturesPart(nn.Module):
    """``(B, 3, H, W) -> tuple`` of neck maps (backbone, then the neck when the model has one)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone = model.backbone
        self.neck = getattr(model, 'neck', None)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)


class ClassifierPart(nn.Module):
    """mmpretrain ``ImageClassifier``: ``(B, 3, H, W) -> (B, num_classes)`` logits (``mode='tensor'``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, mode='tensor')


class SegmentorPart(nn.Module):
    """mmseg ``EncoderDecoder``, whole inference: ``(B, 3, H, W) -> (B, K, H, W)`` logits.

    The decode head's 1/4-resolution logits are resized to the input size, as ``encode_decode`` does
    for ``test_cfg.mode='whole'``; the argmax (and any crop back to the original size) stays outside.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        metas = [dict(img_shape=(h, w), pad_shape=(h, w))] * x.shape[0]
        return self.model.encode_decode(x, metas)


def export_part(model: nn.Module, part: str) -> nn.Module:
    """The module to export for ``part`` (one of :data:`PARTS`) of a built task model.

    Raises:
        ValueError: for an unknown part, or ``'model'`` on a detector: Mask R-CNN and PGD end in
            data-dependent post-processing (NMS, RoIAlign on a variable number of boxes) that is out
            of scope here; export ``'features'`` and run the heads in PyTorch (or with mmdeploy).
    """
    if part not in PARTS:
        raise ValueError(f'--part must be one of {PARTS}, got {part!r}')
    task = task_of(model)
    if part == 'backbone':
        return BackbonePart(model).eval()
    if part == 'features':
        return FeaturesPart(model).eval()
    if task == 'cls':
        return ClassifierPart(model).eval()
    if task == 'seg':
        return SegmentorPart(model).eval()
    raise ValueError(
        f"--part model is available for the classifier and the segmentor; a {type(model).__name__} "
        "ends in NMS / RoIAlign post-processing: use --part features (backbone + neck) and "
        "run the heads in PyTorch")


def default_part(model: nn.Module) -> str:
    """``'model'`` for the classifier and the segmentor, ``'features'`` for the detectors."""
    return 'model' if task_of(model) in ('cls', 'seg') else 'features'

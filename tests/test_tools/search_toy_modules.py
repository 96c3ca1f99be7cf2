"""Test-only modules imported by the toy search configs (``custom_imports``)."""
from mmpretrain.models.necks import GlobalAveragePooling
from mmpretrain.registry import MODELS


@MODELS.register_module(force=True)
class ListGlobalAveragePooling(GlobalAveragePooling):
    """mmpretrain's GAP neck also for backbones that return a list (mmdet's Swin convention)."""

    def forward(self, inputs):
        return super().forward(tuple(inputs) if isinstance(inputs, list) else inputs)

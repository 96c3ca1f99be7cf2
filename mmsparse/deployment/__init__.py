"""Deployment: ONNX export of SparseSwin / SparseDeiT models at fixed sparsity, and the parts that export.

``mmsparse.deployment`` is a plug-in layer (it builds OpenMMLab models); the ONNX and onnxruntime
imports happen inside the functions, so importing it needs neither package.
"""
from .model_builder import apply_ratios, build_model, find_sparse_backbone, task_of
from .onnx_export import (METADATA_PREFIX, TENSORRT_MAX_TOPK, check_exported_graph, export_onnx, ort_session,
                          read_metadata, run_onnxruntime)
from .parts import PARTS, default_part, export_part

__all__ = [
    'build_model', 'task_of', 'find_sparse_backbone', 'apply_ratios', 'export_onnx', 'check_exported_graph',
    'read_metadata', 'run_onnxruntime', 'ort_session', 'METADATA_PREFIX', 'TENSORRT_MAX_TOPK', 'PARTS',
    'export_part', 'default_part'
]

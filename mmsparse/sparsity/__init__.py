"""Torch-only sparsity core: knows nothing of mmengine, mmdet, mmseg or mmpretrain.

Window selection, masks, schedules, importance scores, search space and cost models live here
and are tested on plain tensors. Everything above (models, hooks, loops) imports from here.
"""

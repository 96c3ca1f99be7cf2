"""``torch.compile`` for window-pruned backbones (used by ``tools/test.py --compile`` and the search loop).

A ``SparseSwin`` compiles into one graph (no graph break) per input shape and ratio set: the ratios
are guarded by value, so a new image of the same shape replays the compiled code, and a new ratio set
compiles once more (and is kept, so switching back costs nothing). Only the backbone is compiled: the
heads of mmdet/mmseg models are full of Python-side post-processing that would break the graph anyway.
"""
from typing import List, Optional

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper

from .ratio_targets import find_ratio_targets

__all__ = ['compile_backbones', 'COMPILE_MODES']

COMPILE_MODES = (None, 'default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


def compile_backbones(model: nn.Module,
                      owner: str,
                      backend: str = 'inductor',
                      mode: Optional[str] = None,
                      fullgraph: Optional[bool] = None,
                      dynamic: bool = False,
                      recompile_limit: Optional[int] = None) -> List[str]:
    """Compile, in place (``nn.Module.compile``), every module of ``model`` that takes pruning ratios
    (or, in a model without one, such as a dense baseline, its ``backbone``).

    State-dict keys and attributes stay as they are, so checkpoints load into the compiled model and
    ``set_pruning_ratios`` keeps working (the next call compiles for the new ratios).

    Args:
        model: the (possibly DDP-wrapped) model.
        owner: who asks, for the error when no module takes ratios.
        backend, mode, fullgraph, dynamic: as in ``torch.compile``; ``fullgraph=None`` asks for one
            graph from window-pruned backbones (a graph break there is a bug) and lets any other
            backbone break its graph where it must. ``dynamic=False`` compiles one
            graph per input shape, which is what fixed-size inputs want (classification, sliding-window
            segmentation, a benchmark); with many image shapes (COCO test) compiling does not pay.
        recompile_limit: raise dynamo's per-function limit of compiled variants (default 8: beyond it
            dynamo runs the module eagerly) to at least this, e.g. the number of ratio sets x shapes.

    Returns:
        The names of the compiled modules.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f'compile mode must be one of {COMPILE_MODES}, got {mode!r}')
    if recompile_limit is not None:
        if int(recompile_limit) < 1:
            raise ValueError(f'recompile_limit must be >= 1, got {recompile_limit!r}')
        config = torch._dynamo.config
        name = 'recompile_limit' if hasattr(config, 'recompile_limit') else 'cache_size_limit'
        setattr(config, name, max(getattr(config, name), int(recompile_limit)))
    names = []
    for name, module in _compile_targets(model, owner):
        if any(name.startswith(done + '.') for done in names):
            continue  # inside a module compiled already
        one_graph = fullgraph
        if one_graph is None:
            one_graph = callable(getattr(module, 'set_pruning_ratios', None))
        module.compile(backend=backend, mode=mode, fullgraph=one_graph, dynamic=dynamic)
        names.append(name)
    return names


def _compile_targets(model: nn.Module, owner: str):
    try:
        return find_ratio_targets(model, owner)
    except ValueError:
        inner = model.module if is_model_wrapper(model) else model
        backbone = getattr(inner, 'backbone', None)
        if not isinstance(backbone, nn.Module):
            raise ValueError(f'{owner}: the model ({type(inner).__name__}) has neither a module with '
                             '`set_pruning_ratios` nor a `backbone` to compile') from None
        return [('backbone', backbone)]

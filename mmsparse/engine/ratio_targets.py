"""Find the modules that window-pruning ratios are set on (shared by the SAA hook and the search loop)."""
from typing import List, Tuple

import torch.nn as nn
from mmengine.model import is_model_wrapper


def find_ratio_targets(model: nn.Module, owner: str) -> List[Tuple[str, nn.Module]]:
    """``[(name, module)]`` of every module of ``model`` with ``set_pruning_ratios``.

    The model wrapper (DDP) is looked through, so names carry no ``module.`` prefix. Ratios must
    bind to something (docs/method/sparsevit.md, 1.2: the reference's fine-tune configs once set ratios
    that bound to no module and silently trained dense Swin), so finding none is a ``ValueError``
    naming ``owner``.
    """
    if is_model_wrapper(model):
        model = model.module
    targets = [(name, m) for name, m in model.named_modules()
               if callable(getattr(m, 'set_pruning_ratios', None))]
    if not targets:
        raise ValueError(f'{owner}: the model ({type(model).__name__}) has no module with '
                         '`set_pruning_ratios`, so the ratios would bind to nothing. Use a '
                         "window-pruned backbone such as type='mmsparse.SparseSwin'")
    return targets

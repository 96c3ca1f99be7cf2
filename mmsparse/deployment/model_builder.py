"""Build a task model (classifier, segmentor, detector, mono-3D detector) from a config for export/timing."""
import os.path as osp
from typing import Optional

__all__ = ['build_model', 'task_of', 'find_sparse_backbone', 'apply_ratios', 'TASKS']

# model class name -> task; anything else is refused with the list below
TASKS = {
    'ImageClassifier': 'cls',
    'EncoderDecoder': 'seg',
    'MaskRCNN': 'det',
    'FCOSMono3D': 'mono3d',
}


def build_model(config, checkpoint: Optional[str] = None, cfg_options: Optional[dict] = None, device='cpu'):
    """``(cfg, model)``: the config's model in eval mode, with ``checkpoint`` loaded (strict) if given.

    No pretrained weights are fetched (``init_cfg`` of the backbone is dropped); without a checkpoint
    the weights are the modules' own random initialisation (enough to time or to test an export).
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    import mmsparse.models  # noqa: F401  (registers our modules, installs the checkpoint loader)
    from mmsparse.utils import InputNotFoundError, check_checkpoint_file
    if not isinstance(config, Config) and not osp.isfile(config):
        raise InputNotFoundError(f'config file not found: {config}')
    if checkpoint is not None:
        check_checkpoint_file(checkpoint)  # a missing or corrupt file is named before anything runs
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = cfg.model
    model_cfg.backbone.pop('init_cfg', None)
    model_cfg.backbone['init_cfg'] = None
    if 'pretrained' in model_cfg:
        model_cfg.pretrained = None
    scope = cfg.get('default_scope', 'mmdet')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
        if checkpoint is not None:
            from mmengine.runner import load_checkpoint
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    if type(model).__name__ not in TASKS:
        raise ValueError(f'model.type {type(model).__name__!r} is not supported here; supported: '
                         f'{sorted(TASKS)}')
    return cfg, model.to(device).eval()


def task_of(model) -> str:
    """``'cls' | 'seg' | 'det' | 'mono3d'`` from the model class."""
    return TASKS[type(model).__name__]


def find_sparse_backbone(model):
    """The model's backbone, or ``model`` itself when it is one."""
    return getattr(model, 'backbone', model)


def apply_ratios(backbone, ratios) -> Optional[list]:
    """Set ``ratios`` (a name, or per-stage lists, or a float) on a SparseSwin; returns the ratios in
    effect (per-stage lists), or ``None`` for a backbone without window pruning (SparseDeiT)."""
    if hasattr(backbone, 'set_pruning_ratios'):
        if ratios is not None:
            backbone.set_pruning_ratios(ratios)
        return backbone.get_pruning_ratios()
    if ratios is not None:
        raise ValueError(f'--ratios applies to a SparseSwin backbone; {type(backbone).__name__} has no '
                         'window pruning ratios (its sparsity is in its config and checkpoint)')
    return None

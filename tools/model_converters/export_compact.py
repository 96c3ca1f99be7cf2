"""Export a structured (S2ViTE) SparseDeiT checkpoint as a smaller model with heads/neurons removed.

Usage:
    python tools/model_converters/export_compact.py CONFIG CKPT OUT

CONFIG is an mmpretrain classifier config whose backbone is ``mmsparse.SparseDeiT`` (or
``SparseDistilledDeiT``); CKPT its trained checkpoint. OUT is a directory that receives
``compact.pth`` (``{'state_dict', 'meta'}``) and ``<config stem>_compact.py``, whose backbone records
the per-block ``num_heads`` / ``feedforward_channels`` / ``head_dims`` in ``layer_cfgs``. Build that
config and load that checkpoint to get outputs equal to the masked model's (eval, fp32).
"""
import argparse
import os
import os.path as osp
import warnings

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint


def export(config: str, checkpoint: str, out_dir: str) -> tuple:
    """Build, load, export. Returns (compact config path, compact checkpoint path)."""
    from mmengine.registry import MODELS

    import mmsparse.models  # noqa: F401  (registers SparseDeiT)

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.eval()
    backbone = model.backbone
    if not hasattr(backbone, 'export_compact'):
        raise ValueError(f'`model.backbone.type` must be mmsparse.SparseDeiT (or Distilled), got '
                         f'{cfg.model.backbone.type!r}')
    sel = getattr(backbone, 'selector_cfg', None)
    if sel is not None and sel.get('train_drop') == 'zero':
        warnings.warn("token selector trained with train_drop='zero': the exported model removes "
                      'tokens at inference and is not output-equivalent to its training forward')
    compact, backbone_cfg = backbone.export_compact()
    model.backbone = compact
    cfg.model.backbone = backbone_cfg

    os.makedirs(out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(config))[0]
    cfg_path = osp.join(out_dir, f'{stem}_compact.py')
    ckpt_path = osp.join(out_dir, 'compact.pth')
    cfg.dump(cfg_path)
    heads = [c['num_heads'] for c in backbone_cfg['layer_cfgs']]
    hidden = [c['feedforward_channels'] for c in backbone_cfg['layer_cfgs']]
    torch.save(
        {
            'state_dict': model.state_dict(),
            'meta': dict(compact_from=osp.abspath(checkpoint), num_heads=heads, feedforward_channels=hidden)
        }, ckpt_path)
    return cfg_path, ckpt_path


def main():
    parser = argparse.ArgumentParser(description='Remove pruned heads / neurons of a SparseDeiT')
    parser.add_argument('config', help='classifier config with backbone mmsparse.SparseDeiT')
    parser.add_argument('checkpoint', help='trained (masked) checkpoint')
    parser.add_argument('out', help='output directory for compact.pth and the compact config')
    args = parser.parse_args()
    cfg_path, ckpt_path = export(args.config, args.checkpoint, args.out)
    print(f'compact config: {cfg_path}\ncompact checkpoint: {ckpt_path}')


if __name__ == '__main__':
    main()

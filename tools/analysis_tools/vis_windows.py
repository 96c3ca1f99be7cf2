"""Show which windows SparseSwin keeps: one PNG per stage, pruned windows dimmed.

Usage:
    python tools/analysis_tools/vis_windows.py CONFIG CKPT IMAGE --ratios cfg2 [--shape 672 672]
        [--out-dir vis_windows]

CONFIG has a ``mmsparse.SparseSwin`` backbone (``model.backbone``) or is a mmdet Swin config; CKPT is a
detector/backbone checkpoint, or ``none`` for random weights. The image is squashed to ``--shape`` and
normalised with the config's data_preprocessor mean/std (ImageNet by default). In ``stage{s}.png`` each
token's brightness is the fraction of the stage's blocks that processed it: fully bright tokens went
through every block, dark ones were copied through by all of them.
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch
from PIL import Image

from mmsparse.sparsity.ratios import PUBLISHED_RATIOS as NAMED  # noqa: E402
from mmsparse.sparsity.ratios import named_or_json_ratios  # noqa: E402



def processed_fraction(selection, blocks, hw, window_size=7):
    """``(B, H, W)`` fraction of a stage's blocks that processed each token (1 on the dense path)."""
    from mmsparse.sparsity.window_selection import stage_geometry, token_index
    geo = stage_geometry(hw[0], hw[1], window_size)
    count = None
    for kept, block in zip(selection, blocks):
        if kept is None:
            add = torch.ones(1, geo.padded_height * geo.padded_width)
        else:
            idx = token_index(geo, window_size, block.attn.shift_size)
            add = torch.zeros(kept.shape[0], geo.padded_height * geo.padded_width)
            pos = idx[kept.cpu()].flatten(1)
            add.scatter_(1, pos, 1.0)
        count = add if count is None else count + add
    frac = count / len(selection)
    return frac.view(-1, geo.padded_height, geo.padded_width)[:, :hw[0], :hw[1]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', help="checkpoint file, or 'none' for random weights")
    p.add_argument('image')
    p.add_argument('--ratios', default='cfg2', help=f'{list(NAMED)} or a JSON list')
    p.add_argument('--shape', nargs=2, type=int, default=[672, 672], metavar=('H', 'W'))
    p.add_argument('--out-dir', default='vis_windows')
    p.add_argument('--dim', type=float, default=0.25, help='brightness of fully pruned tokens')
    args = p.parse_args(argv)

    import mmsparse  # noqa: F401
    from mmengine.config import Config
    from mmsparse.registry import MODELS
    if '::' in args.config:
        from mmengine.hub import get_config
        cfg = get_config(args.config)
    else:
        cfg = Config.fromfile(args.config)
    model_cfg = cfg.get('model', cfg)
    bb_cfg = dict(model_cfg.get('backbone', model_cfg))
    bb_cfg.update(type='mmsparse.SparseSwin', init_cfg=None, record_selection=True)
    bb_cfg.pop('convert_weights', None)
    ratios = named_or_json_ratios(args.ratios)
    bb_cfg['pruning_ratios'] = ratios
    backbone = MODELS.build(bb_cfg).eval()
    if args.checkpoint != 'none':
        state = torch.load(args.checkpoint, map_location='cpu', weights_only=False)
        state = state.get('state_dict', state)
        if any(k.startswith('backbone.') for k in state):
            state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        backbone.load_state_dict(state, strict=False)

    pre = model_cfg.get('data_preprocessor', {}) if hasattr(model_cfg, 'get') else {}
    mean = np.array(pre.get('mean', [123.675, 116.28, 103.53]), dtype=np.float32)
    std = np.array(pre.get('std', [58.395, 57.12, 57.375]), dtype=np.float32)
    h, w = args.shape
    rgb = np.asarray(Image.open(args.image).convert('RGB').resize((w, h), Image.BILINEAR),
                     dtype=np.float32)
    x = torch.from_numpy((rgb - mean) / std).permute(2, 0, 1)[None]
    with torch.no_grad():
        backbone(x)

    os.makedirs(args.out_dir, exist_ok=True)
    th, tw = -(-h // 4), -(-w // 4)
    for s, (stage, sel) in enumerate(zip(backbone.stages, backbone.last_selection)):
        frac = processed_fraction(sel, stage.blocks, (th, tw))[0].numpy()
        stride = 4 * 2**s
        up = np.kron(frac, np.ones((stride, stride), dtype=np.float32))[:h, :w]
        shade = args.dim + (1 - args.dim) * up
        img = (rgb * shade[..., None]).clip(0, 255).astype(np.uint8)
        path = osp.join(args.out_dir, f'stage{s}.png')
        Image.fromarray(img).save(path)
        print(f'stage {s}: {frac.mean() * 100:.1f} % of block-token work kept -> {path}')
        th, tw = -(-th // 2), -(-tw // 2)


if __name__ == '__main__':
    main()

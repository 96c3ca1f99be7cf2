"""Show which windows SparseSwin processes, stage by stage, and whether they land on the objects.

Usage:
    python tools/analysis_tools/vis_windows.py CONFIG CKPT IMAGE [IMAGE ...] --ratios cfg2
        [--shape 672 672] [--out-dir vis_windows] [--ann-file instances.json | --label-dir DIR]
        [--per-stage] [--figure-images N] [--num-draws 8] [--seed 0]

CONFIG has a ``mmsparse.SparseSwin`` backbone (``model.backbone``) or is a mmdet Swin config; CKPT is a
detector/backbone checkpoint, or ``none`` for random weights. Each image is squashed to ``--shape`` and
normalised with the config's data_preprocessor mean/std (ImageNet by default).

Writes ``<out-dir>/kept_windows.png``: for every image, one row per stage and two panels per row, the
regular window partition (the W-MSA blocks) and the shifted one (the SW-MSA blocks). Window borders are
drawn (solid: regular, dashed: shifted; shifted windows at the border wrap around to the other side);
a window is tinted green by the share of that partition's blocks that process it and greyed and hatched
when every block copies it through. Each panel's title gives the stage, the blocks' ratios and
kept/total windows per block. ``--per-stage`` also writes ``stage{s}.png`` (the panels of one stage).

With ground-truth objects (``--ann-file``: a COCO instances json, images matched by file name;
``--label-dir``: label maps ``<image stem>.png``, object = any label not in ``--background``) object
outlines are drawn, the titles add the *object recall* (share of object pixels inside the processed
windows, mean over the blocks on the window path) next to that of random windows of the same counts,
and ``<out-dir>/object_recall.json`` holds the per-stage numbers.
"""
import argparse
import json
import os
import os.path as osp

import numpy as np
import torch
from PIL import Image

from mmsparse.sparsity.ratios import PUBLISHED_RATIOS as NAMED
from mmsparse.sparsity.ratios import named_or_json_ratios
from mmsparse.sparsity.window_coverage import kept_token_mask, stage_object_recall
from mmsparse.sparsity.window_selection import stage_geometry

PATCH = 4  # Swin's patch size: a stage-s token covers (PATCH * 2**s) pixels per side
MIN_PANEL = 448  # long side of a panel in pixels
KEPT_RGB = np.array([26, 152, 80], np.float32)  # processed by every block of the partition
SOME_RGB = np.array([217, 239, 139], np.float32)  # processed by few of them (interpolated)


def processed_share(selection, shifts, geometry, window_size, parity_shift):
    """Share of the partition's blocks that process each padded token, ``(B, Hp, Wp)`` float.

    Only the blocks whose shift equals ``parity_shift`` count; a block on the dense path (``None``)
    processes every window. ``None`` when the stage has no block with that shift.
    """
    shares, n = None, 0
    for kept, shift in zip(selection, shifts):
        if shift != parity_shift:
            continue
        if kept is None:
            add = torch.ones(1, geometry.padded_height, geometry.padded_width)
        else:
            add = kept_token_mask(kept.cpu(), geometry, window_size, shift).float()
        shares = add if shares is None else shares + add
        n += 1
    return None if shares is None else shares / n


def shade_panel(rgb, share, objects=None):
    """The panel's pixels: ``rgb`` ``(H, W, 3)`` uint8, ``share`` ``(H, W)`` in [0, 1] -> uint8.

    Processed pixels are tinted green (darker = more blocks); copied-through ones are greyed, darkened
    and hatched with diagonal lines, so the two read apart even in print.
    """
    img = rgb.astype(np.float32)
    h, w = share.shape
    grey = img.mean(-1, keepdims=True) * 0.45 + 70
    yy, xx = np.mgrid[0:h, 0:w]
    hatch = ((xx + yy) % 10) < 2
    dropped = share <= 0
    tint = SOME_RGB + (KEPT_RGB - SOME_RGB) * share[..., None]
    out = np.where(dropped[..., None], grey, 0.6 * img + 0.4 * tint)
    out[dropped & hatch] = 40
    return out.clip(0, 255).astype(np.uint8)


def load_objects(args, paths, hw):
    """``(B, H, W)`` bool object pixels resized to the model's input, or ``None`` without masks."""
    h, w = hw
    masks = []
    if args.ann_file:
        from pycocotools.coco import COCO
        coco = COCO(args.ann_file)
        by_name = {img['file_name']: img['id'] for img in coco.dataset['images']}
        for p in paths:
            img_id = by_name.get(osp.basename(p))
            if img_id is None:
                raise ValueError(f'image {osp.basename(p)!r} is not in --ann-file {args.ann_file}')
            info = coco.imgs[img_id]
            m = np.zeros((info['height'], info['width']), bool)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=None)):
                m |= coco.annToMask(ann).astype(bool)
            masks.append(m)
    elif args.label_dir:
        for p in paths:
            path = osp.join(args.label_dir, osp.splitext(osp.basename(p))[0] + '.png')
            if not osp.isfile(path):
                raise ValueError(f'--label-dir has no label map {path} for image {p}')
            label = np.asarray(Image.open(path))
            masks.append(~np.isin(label, args.background))
    else:
        return None
    resized = [
        np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
        for m in masks
    ]
    return torch.from_numpy(np.stack(resized))


def build_backbone(config, checkpoint, ratios):
    """The config's backbone as ``SparseSwin(record_selection=True)`` and its data preprocessor."""
    from mmengine.config import Config

    import mmsparse  # noqa: F401
    from mmsparse.registry import MODELS
    if '::' in config:
        from mmengine.hub import get_config
        cfg = get_config(config)
    else:
        cfg = Config.fromfile(config)
    model_cfg = cfg.get('model', cfg)
    bb_cfg = dict(model_cfg.get('backbone', model_cfg))
    bb_cfg.update(type='mmsparse.SparseSwin', init_cfg=None, record_selection=True, pruning_ratios=ratios)
    bb_cfg.pop('convert_weights', None)
    backbone = MODELS.build(bb_cfg).eval()
    if checkpoint != 'none':
        state = torch.load(checkpoint, map_location='cpu', weights_only=False)
        state = state.get('state_dict', state)
        if any(k.startswith('backbone.') for k in state):
            state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        backbone.load_state_dict(state, strict=False)
    pre = model_cfg.get('data_preprocessor', {}) if hasattr(model_cfg, 'get') else {}
    return backbone, pre or {}


def grid_lines(ax, geometry, window_size, stride, scale, shift, color):
    """Window borders of the partition (``shift`` tokens; dashed when shifted) in panel pixels."""
    style = '-' if shift == 0 else '--'
    for n, line in ((geometry.padded_height, ax.axhline), (geometry.padded_width, ax.axvline)):
        if n <= window_size:  # a single window: a shift only rolls it, there is no border
            continue
        for t in range(shift % window_size, n + 1, window_size):
            line(t * stride * scale - 0.5, color=color, lw=1.2, ls=style)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', help="checkpoint file, or 'none' for random weights")
    p.add_argument('images', nargs='+', metavar='image')
    p.add_argument('--ratios', default='cfg2', help=f'{list(NAMED)} or a JSON list')
    p.add_argument('--shape', nargs=2, type=int, default=[672, 672], metavar=('H', 'W'))
    p.add_argument('--out-dir', default='vis_windows')
    masks = p.add_mutually_exclusive_group()
    masks.add_argument('--ann-file', help='COCO instances json with the images (object masks)')
    masks.add_argument('--label-dir', help='directory of <image stem>.png label maps')
    p.add_argument(
        '--background',
        nargs='+',
        type=int,
        default=[0, 1],
        help='label values that are not objects (with --label-dir)')
    p.add_argument('--per-stage', action='store_true', help='also write stage{s}.png')
    p.add_argument(
        '--figure-images',
        type=int,
        default=0,
        help='draw only the first N images (0: all); object recall still uses every image')
    p.add_argument('--num-draws', type=int, default=8, help='random selections per block (>= 1)')
    p.add_argument('--seed', type=int, default=0, help='seed of the random baseline')
    args = p.parse_args(argv)
    if args.figure_images < 0:
        p.error(f'--figure-images must be >= 0, got {args.figure_images}')
    if args.num_draws < 1:
        p.error(f'--num-draws must be >= 1, got {args.num_draws}')
    h, w = args.shape
    if h < 32 or w < 32:
        p.error(f'--shape must be at least 32 x 32 pixels, got {h} x {w}')

    ratios = named_or_json_ratios(args.ratios)
    backbone, pre = build_backbone(args.config, args.checkpoint, ratios)
    mean = np.array(pre.get('mean', [123.675, 116.28, 103.53]), dtype=np.float32)
    std = np.array(pre.get('std', [58.395, 57.12, 57.375]), dtype=np.float32)
    rgbs = [np.asarray(Image.open(f).convert('RGB').resize((w, h), Image.BILINEAR)) for f in args.images]
    x = torch.from_numpy((np.stack(rgbs).astype(np.float32) - mean) / std).permute(0, 3, 1, 2)
    with torch.no_grad():
        backbone(x)
    objects = load_objects(args, args.images, (h, w))

    stages = []
    th, tw = -(-h // PATCH), -(-w // PATCH)
    for s, (stage, sel) in enumerate(zip(backbone.stages, backbone.last_selection)):
        ws = stage.blocks[0].attn.window_size
        shifts = [blk.attn.shift_size for blk in stage.blocks]
        geo = stage_geometry(th, tw, ws)
        stages.append(
            dict(
                stage=s,
                geometry=geo,
                window_size=ws,
                stride=PATCH * 2**s,
                shifts=shifts,
                selection=sel,
                ratios=backbone.pruning_ratios[s]))
        th, tw = -(-th // 2), -(-tw // 2)

    os.makedirs(args.out_dir, exist_ok=True)
    report = recall_report(stages, objects, args) if objects is not None else None
    if report is not None:
        with open(osp.join(args.out_dir, 'object_recall.json'), 'w') as f:
            json.dump(report, f, indent=2)
    n = args.figure_images or len(rgbs)
    shown = (rgbs[:n], None if objects is None else objects[:n], report, args.images[:n], (h, w))
    path = osp.join(args.out_dir, 'kept_windows.png')
    draw_figure(path, stages, *shown)
    print(f'kept windows -> {path}')
    if args.per_stage:
        for st in stages:
            draw_figure(osp.join(args.out_dir, f'stage{st["stage"]}.png'), [st], *shown)
    for st in stages:
        geo, sel = st['geometry'], st['selection']
        kept = [geo.num_windows if k is None else k.shape[1] for k in sel]
        line = f'stage {st["stage"]}: kept windows per block {kept} of {geo.num_windows}'
        if report is not None:
            r = report['stages'][st['stage']]
            line += f'; object recall {r["object_recall"]:.3f}, random {r["random_recall"]:.3f}'
        print(line)
    return report


def recall_report(stages, objects, args):
    """Per stage: object recall of the kept windows and of random ones, per image and averaged."""
    out = dict(
        images=[osp.basename(f) for f in args.images], seed=args.seed, num_draws=args.num_draws, stages=[])
    for st in stages:
        res = stage_object_recall(
            st['selection'],
            st['shifts'],
            st['geometry'],
            st['window_size'],
            st['stride'],
            objects,
            num_draws=args.num_draws,
            seed=args.seed + st['stage'])
        parity = {}
        for name, shift in _partitions(st['shifts']):
            idx = [i for i, sh in enumerate(st['shifts']) if sh == shift]
            r = stage_object_recall([st['selection'][i] for i in idx], [shift] * len(idx),
                                    st['geometry'],
                                    st['window_size'],
                                    st['stride'],
                                    objects,
                                    num_draws=args.num_draws,
                                    seed=args.seed + st['stage'])
            parity[name] = dict(
                object_recall=_nanmean(r.kept),
                random_recall=_nanmean(r.random),
                per_image=r.kept.tolist(),
                per_image_random=r.random.tolist())
        out['stages'].append(
            dict(
                stage=st['stage'],
                object_recall=_nanmean(res.kept),
                random_recall=_nanmean(res.random),
                chance=res.chance,
                per_image=res.kept.tolist(),
                per_image_random=res.random.tolist(),
                partitions=parity))
    return out


def _partitions(shifts):
    """``[('regular', 0)]`` plus ``('shifted', shift)`` when some block of the stage is shifted."""
    return [('regular', 0)] + ([('shifted', max(shifts))] if max(shifts) > 0 else [])


def _nanmean(t):
    t = t[~torch.isnan(t)]
    return float(t.mean()) if t.numel() else float('nan')


def _panel_title(st, name, shift, report, image_index):
    idx = [i for i, sh in enumerate(st['shifts']) if sh == shift]
    nw = st['geometry'].num_windows
    kept = [nw if st['selection'][i] is None else st['selection'][i].shape[1] for i in idx]
    ratios = ', '.join(f'{st["ratios"][i]:.2f}' for i in idx)
    first = (f'stage {st["stage"]} · {name} windows (blocks {", ".join(map(str, idx))})\n'
             f'ratios [{ratios}] · kept {", ".join(map(str, kept))} / {nw} windows')
    if report is not None:
        part = report['stages'][st['stage']]['partitions'].get(name)
        if part is not None:
            first += (f'\nobject recall {part["per_image"][image_index]:.2f} '
                      f'(random {part["per_image_random"][image_index]:.2f})')
    return first


def draw_figure(path, stages, rgbs, objects, report, image_paths, hw):
    """One PNG: rows = stages, columns = (regular, shifted) per image; a shared legend at the bottom."""
    import matplotlib
    matplotlib.use('Agg')  # files only; never needs a display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    h, w = hw
    scale = max(1, int(np.ceil(max(MIN_PANEL / max(h, w), (MIN_PANEL / 2) / min(h, w)))))
    ph, pw = h * scale, w * scale
    dpi = 100
    cols, rows = 2 * len(rgbs), len(stages)
    title_in = 0.62 if report is None else 0.82
    fig, axes = plt.subplots(
        rows,
        cols,
        squeeze=False,
        dpi=dpi,
        figsize=(cols * (pw / dpi + 0.2), rows * (ph / dpi + title_in) + 0.9))
    for r, st in enumerate(stages):
        geo, ws, stride = st['geometry'], st['window_size'], st['stride']
        shift_of = {'regular': 0, 'shifted': max(st['shifts'])}
        for i, rgb in enumerate(rgbs):
            big = np.asarray(Image.fromarray(rgb).resize((pw, ph), Image.NEAREST))
            for c, name in enumerate(('regular', 'shifted')):
                ax = axes[r, 2 * i + c]
                shift = shift_of[name]
                share = None
                if name == 'regular' or shift > 0:
                    share = processed_share(st['selection'], st['shifts'], geo, ws, shift)
                if share is None:  # no shifted blocks in this stage
                    ax.axis('off')
                    continue
                share = share[min(i, share.shape[0] - 1)].numpy()
                pix = np.kron(share, np.ones((stride * scale, stride * scale), np.float32))[:ph, :pw]
                ax.imshow(shade_panel(big, pix), interpolation='nearest')
                grid_lines(ax, geo, ws, stride, scale, shift, 'white' if shift == 0 else 'black')
                if objects is not None:
                    obj = np.kron(objects[i].numpy().astype(np.float32), np.ones((scale, scale)))
                    ax.contour(obj, levels=[0.5], colors=['#e41a1c'], linewidths=1.5)
                ax.set_xlim(-0.5, pw - 0.5)
                ax.set_ylim(ph - 0.5, -0.5)
                ax.set_xticks([])
                ax.set_yticks([])
                title = _panel_title(st, name, shift, report, i)
                if len(rgbs) > 1 and r == 0:
                    title = f'{osp.basename(image_paths[i])}\n{title}'
                ax.set_title(title, fontsize=9)
    handles = [
        Patch(facecolor=KEPT_RGB / 255, label="processed by every block of the partition"),
        Patch(facecolor=SOME_RGB / 255, label='processed by some of them (lighter: fewer)'),
        Patch(
            facecolor='0.55', hatch='///', edgecolor='0.15', label='copied through by every block (pruned)'),
        plt.Line2D([], [], color='0.3', lw=1.2, label='regular window borders (white)'),
        plt.Line2D([], [],
                   color='black',
                   lw=1.2,
                   ls='--',
                   label='shifted window borders (border windows wrap around)')
    ]
    if objects is not None:
        handles.append(plt.Line2D([], [], color='#e41a1c', lw=1.5, label='ground-truth objects'))
    fig.legend(handles=handles, loc='lower center', ncol=min(3, len(handles)), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.9 / fig.get_figheight() + 0.01, 1, 1))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


if __name__ == '__main__':
    main()

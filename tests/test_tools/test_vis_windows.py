"""vis_windows.py: one PNG per stage, pruned windows dimmed, dense stages untouched."""
import importlib.util
import os.path as osp

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'vis_windows.py')
    spec = importlib.util.spec_from_file_location('vis_windows', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_vis_windows(tmp_path, capsys):
    tool = _load_tool()
    cfg = tmp_path / 'tiny_swin.py'
    cfg.write_text("model = dict(backbone=dict(type='SwinTransformer', embed_dims=32, "
                   'num_heads=(1, 2, 4, 8), depths=(2, 2, 6, 2)))\n')
    rng = np.random.default_rng(0)
    img = tmp_path / 'img.png'
    Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(img)
    out = tmp_path / 'vis'
    tool.main([str(cfg), 'none', str(img), '--ratios', 'cfg2', '--shape', '224', '224', '--out-dir',
               str(out), '--dim', '0.25'])
    src = np.asarray(Image.open(img).convert('RGB'), dtype=np.float32)
    pngs = [np.asarray(Image.open(out / f'stage{s}.png')) for s in range(4)]
    assert all(p.shape == (224, 224, 3) for p in pngs)
    # stages 1 and 3 are dense in cfg2: nothing dimmed
    assert np.array_equal(pngs[1], src.astype(np.uint8))
    assert np.array_equal(pngs[3], src.astype(np.uint8))
    # stage 0: 56x56 tokens, nW = 64, r = .6 keeps 25 windows in each block -> 25/64 of the work
    printed = capsys.readouterr().out
    assert f'stage 0: {25 / 64 * 100:.1f} %' in printed
    # brightness of each 4x4 token is dim, (1 + dim) / 2 or 1: processed by 0, 1 or 2 of the blocks
    bright = src[::4, ::4] >= 40  # avoid uint8 truncation noise on dark pixels
    shade = pngs[0][::4, ::4].astype(np.float32)[bright] / src[::4, ::4][bright]
    levels = np.array([0.25, 0.625, 1.0])
    nearest = np.abs(shade[:, None] - levels[None]).min(1)
    assert nearest.max() < 0.03
    hit = {float(lv) for lv in levels if (np.abs(shade - lv) < 0.03).any()}
    assert hit == {0.25, 0.625, 1.0}

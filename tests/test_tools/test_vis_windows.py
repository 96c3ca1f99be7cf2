"""vis_windows.py: processed-window shares, panel shading, the combined figure and object recall."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mmsparse.sparsity.window_selection import stage_geometry
from tests.tiny_models import TINY_SWIN_T, write_backbone_config
from tests.tool_runner import load_tool

TOOL = 'tools/analysis_tools/vis_windows.py'


def test_processed_share_counts_only_blocks_of_the_partition():
    tool = load_tool(TOOL)
    geo = stage_geometry(14, 14, 7)  # 2x2 windows
    # regular blocks 0 and 2 keep {0, 1} and {0}; shifted block 1 keeps {3}
    sel = [torch.tensor([[0, 1]]), torch.tensor([[3]]), torch.tensor([[0]])]
    share = tool.processed_share(sel, [0, 3, 0], geo, 7, 0)[0].numpy()
    want = np.zeros((14, 14))
    want[:7, :7] = 1.0  # window 0: both regular blocks
    want[:7, 7:] = 0.5  # window 1: one of two
    np.testing.assert_array_equal(share, want)
    shifted = tool.processed_share(sel, [0, 3, 0], geo, 7, 3)[0].numpy()
    # shifted window 3 = rolled rows/cols 7..13 = original tokens 10..13 and 0..2 (wrapping)
    rows = np.isin(np.arange(14), list(range(10, 14)) + [0, 1, 2])
    np.testing.assert_array_equal(shifted, (rows[:, None] & rows[None, :]).astype(float))
    assert tool.processed_share([None, None], [0, 0], geo, 7, 3) is None  # no shifted block
    dense = tool.processed_share([None, torch.tensor([[1]])], [0, 0], geo, 7, 0)[0].numpy()
    assert dense[:7, :7].max() == 0.5 and dense[:7, 7:].min() == 1.0


def test_shade_panel_greys_and_hatches_only_copied_through_pixels():
    tool = load_tool(TOOL)
    rgb = np.full((20, 20, 3), (200, 40, 40), np.uint8)
    share = np.zeros((20, 20), np.float32)
    share[:, 10:] = 1.0
    out = tool.shade_panel(rgb, share).astype(int)
    kept, dropped = out[:, 10:], out[:, :10]
    # processed: 60 % image, 40 % the 'every block' green (to within uint8 truncation)
    np.testing.assert_allclose(kept[0, 0], 0.6 * rgb[0, 0] + 0.4 * tool.KEPT_RGB, atol=1)
    assert (np.ptp(dropped, axis=-1) == 0).all()  # grey: no colour left
    grey = 0.45 * (200 + 40 + 40) / 3 + 70
    levels = np.unique(dropped[..., 0])
    assert len(levels) == 2 and levels[0] == 40 and abs(levels[1] - grey) <= 1  # hatch lines, grey


def test_tool_writes_readable_figure_and_object_recall(tmp_path, capsys):
    tool = load_tool(TOOL)
    cfg = write_backbone_config(tmp_path / 'tiny_swin.py', TINY_SWIN_T)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(2):
        img = rng.integers(0, 60, (224, 224, 3), dtype=np.uint8)
        img[40:100, 60:140] = (230, 200, 30)  # the one object
        path = tmp_path / f'{i}.png'
        Image.fromarray(img).save(path)
        images.append(dict(id=i + 1, file_name=path.name, height=224, width=224))
        poly = [60, 40, 140, 40, 140, 100, 60, 100]
        anns.append(
            dict(
                id=i + 1,
                image_id=i + 1,
                category_id=1,
                segmentation=[poly],
                area=4800.0,
                bbox=[60, 40, 80, 60],
                iscrowd=0))
    ann_file = tmp_path / 'instances.json'
    ann_file.write_text(
        json.dumps(dict(images=images, annotations=anns, categories=[dict(id=1, name='box')])))
    out = tmp_path / 'vis'
    torch.manual_seed(0)
    report = tool.main([
        str(cfg), 'none',
        str(tmp_path / '0.png'),
        str(tmp_path / '1.png'), '--ratios', 'cfg2', '--shape', '224', '224', '--out-dir',
        str(out), '--ann-file',
        str(ann_file), '--per-stage', '--num-draws', '200'
    ])
    # 4 stage rows, 2 partitions x 2 images per row, every panel at least 448 px
    fig = Image.open(out / 'kept_windows.png')
    assert fig.size[0] >= 4 * 448 and fig.size[1] >= 4 * 448
    assert all(Image.open(out / f'stage{s}.png').size[0] >= 4 * 448 for s in range(4))
    printed = capsys.readouterr().out
    # stage 0: 56x56 tokens, nW = 64, r = .6 keeps 25 windows in each block
    assert 'stage 0: kept windows per block [25, 25] of 64' in printed
    saved = json.loads((out / 'object_recall.json').read_text())
    assert saved['stages'] == report['stages']
    s0 = report['stages'][0]
    assert s0['chance'] == pytest.approx(25 / 64)
    assert s0['random_recall'] == pytest.approx(25 / 64, abs=0.05)
    assert 0.0 <= s0['object_recall'] <= 1.0
    assert report['stages'][1]['object_recall'] == 1.0  # cfg2 keeps stage 1 dense
    assert set(s0['partitions']) == {'regular', 'shifted'}


def test_tool_rejects_image_missing_from_annotations(tmp_path):
    tool = load_tool(TOOL)
    cfg = write_backbone_config(tmp_path / 'tiny_swin.py', TINY_SWIN_T)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / 'a.png')
    (tmp_path / 'ann.json').write_text(json.dumps(dict(images=[], annotations=[], categories=[])))
    with pytest.raises(ValueError, match="'a.png' is not in --ann-file"):
        tool.main([
            str(cfg), 'none',
            str(tmp_path / 'a.png'), '--shape', '64', '64', '--out-dir',
            str(tmp_path / 'o'), '--ann-file',
            str(tmp_path / 'ann.json')
        ])


def test_label_maps_give_object_pixels_resized_to_the_input(tmp_path):
    tool = load_tool(TOOL)
    label = np.ones((32, 48), np.uint8)  # ADE style: 1 = background, 0 = ignore, >= 2 objects
    label[8:16, 24:40] = 3
    label[0, 0] = 0
    (tmp_path / 'labels').mkdir()
    Image.fromarray(label).save(tmp_path / 'labels' / 'ADE_val_0.png')

    class Args:
        ann_file, label_dir, background = None, str(tmp_path / 'labels'), [0, 1]

    obj = tool.load_objects(Args, [str(tmp_path / 'ADE_val_0.jpg')], (64, 96))
    want = np.zeros((64, 96), bool)
    want[16:32, 48:80] = True  # nearest-neighbour upscale by 2
    np.testing.assert_array_equal(obj[0].numpy(), want)

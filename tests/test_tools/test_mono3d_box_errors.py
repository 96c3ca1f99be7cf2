"""mono3d_box_errors.py: exact 3D IoU of paired boxes, matching, per-term errors and the CLI."""
import json
import pickle

import numpy as np
import pytest
from shapely.geometry import Polygon

from tests.tool_runner import load_tool

TOOL = 'tools/analysis_tools/mono3d_box_errors.py'
CAR = np.array([1.0, 1.65, 12.0, 3.9, 1.56, 1.6, np.pi / 2])  # heading along z: length along the depth


def _shapely_iou(a, b):
    """3D IoU by shapely polygons of the BEV footprints (x, z) times the height overlap."""

    def footprint(box):
        x, _, z, length, _, width, yaw = box
        # a camera box's length runs along (cos yaw, -sin yaw) in (x, z), its width perpendicular
        dl = np.array([np.cos(yaw), -np.sin(yaw)]) * length / 2
        dw = np.array([np.sin(yaw), np.cos(yaw)]) * width / 2
        c = np.array([x, z])
        return Polygon([c - dl - dw, c + dl - dw, c + dl + dw, c - dl + dw])

    inter = footprint(a).intersection(footprint(b)).area
    inter *= max(0.0, min(a[1], b[1]) - max(a[1] - a[4], b[1] - b[4]))
    return inter / (a[3] * a[4] * a[5] + b[3] * b[4] * b[5] - inter)


def test_box3d_iou_matches_hand_shifts_and_shapely():
    tool = load_tool(TOOL)
    along, down = CAR.copy(), CAR.copy()
    along[2] += 0.5  # 0.5 m further along the car's length
    down[1] += 0.3  # 0.3 m lower
    got = tool.box3d_iou(np.stack([CAR, along, down]), np.stack([CAR, CAR, CAR]))
    np.testing.assert_allclose(got, [1.0, (3.9 - 0.5) / (3.9 + 0.5), (1.56 - 0.3) / (1.56 + 0.3)], atol=1e-9)
    # turned and shifted boxes against shapely's polygon overlap
    rng = np.random.default_rng(0)
    moved = CAR + rng.normal(0, [0.3, 0.05, 0.5, 0.1, 0.05, 0.05, 0.4], (20, 7))
    want = [_shapely_iou(m, CAR) for m in moved]
    np.testing.assert_allclose(tool.box3d_iou(moved, np.repeat(CAR[None], 20, 0)), want, atol=1e-9)
    with pytest.raises(ValueError, match=r'\(N, 7\)'):
        tool.box3d_iou(np.zeros((2, 7)), np.zeros((3, 7)))


def test_match_boxes_takes_highest_score_within_radius_once():
    tool = load_tool(TOOL)
    gt = np.stack([CAR, CAR + [5, 0, 0, 0, 0, 0, 0]])
    pred = np.stack([
        CAR + [0.5, 0, 0, 0, 0, 0, 0],  # near gt 0, low score
        CAR + [0, 0, 0.3, 0, 0, 0, 0],  # near gt 0, higher score: the match
        CAR + [20, 0, 0, 0, 0, 0, 0],  # far from both
        CAR + [5, 0, 0.1, 0, 0, 0, 0],  # gt 1, but below the score threshold
    ])
    scores = np.array([0.5, 0.9, 1.0, 0.05])
    assert tool.match_boxes(pred, scores, gt, max_dist=2.0, score_thr=0.1) == [(0, 1)]
    assert sorted(tool.match_boxes(pred, scores, gt, max_dist=2.0, score_thr=0.0)) == [(0, 1), (1, 3)]


def test_term_errors_names_the_term_that_costs_the_iou():
    tool = load_tool(TOOL)
    gt = np.stack([CAR + [x, 0, 0, 0, 0, 0, 0] for x in (-3, 0, 3, 6)])
    pred = gt.copy()
    pred[:, 2] += 0.8  # IoU (3.9 - 0.8) / (3.9 + 0.8) = 0.66, under 0.7
    pred[:, 6] += np.pi + 0.01  # heading reversed, otherwise nearly right
    stats = tool.term_errors(pred, gt, iou_thr=0.7)
    assert stats['matched'] == 4 and stats['iou_ge_thr'] == 0.0 and stats['yaw_flipped'] == 1.0
    z, yaw = stats['terms']['z'], stats['terms']['yaw']
    assert z['mean'] == pytest.approx(0.8) and z['mae'] == pytest.approx(0.8) and z['p90'] == pytest.approx(
        0.8)
    assert yaw['mean'] == pytest.approx(0.01)  # modulo pi
    assert z['iou_ge_thr_if_exact'] == 1.0
    for name in ('x', 'y', 'l', 'h', 'w', 'yaw'):
        assert stats['terms'][name]['iou_ge_thr_if_exact'] == 0.0, name
        if name != 'yaw':
            assert stats['terms'][name]['mae'] == pytest.approx(0.0), name


def test_observation_angle_stats_tell_a_constant_angle_from_a_learnt_one():
    tool = load_tool(TOOL)
    gt = np.stack([CAR + [x, 0, 0, 0, 0, 0, d] for x, d in ((-4, 0.2), (-1, -0.1), (2, 0.1), (5, -0.2))])
    exact = tool.term_errors(gt.copy(), gt, iou_thr=0.7)
    assert exact['alpha_std_ratio'] == pytest.approx(1.0) and exact['alpha_corr'] == pytest.approx(1.0)
    # one observation angle for all, turned back to a yaw through each box's viewing ray
    same = gt.copy()
    same[:, 6] = 1.5 + np.arctan2(gt[:, 0], gt[:, 2])
    assert tool.term_errors(same, gt, iou_thr=0.7)['alpha_std_ratio'] == pytest.approx(0.0, abs=1e-9)


def test_cli_reads_test_tool_dump_and_info_file(tmp_path, capsys):
    tool = load_tool(TOOL)
    gt = [CAR, CAR + [4, 0, 3, 0, 0, 0, 0]]
    infos = dict(
        data_list=[dict(sample_idx=7, instances=[dict(bbox_3d=list(g), bbox_label_3d=2) for g in gt])])
    pred = np.stack([gt[0] + [0.1, 0, 0, 0, 0, 0, 0], gt[1], gt[1]])
    results = [
        dict(
            sample_idx=7,
            pred_instances_3d=dict(
                bboxes_3d=pred, scores_3d=np.array([0.9, 0.8, 0.7]), labels_3d=np.array([2, 2, 0])))
    ]
    for name, obj in (('preds.pkl', results), ('infos.pkl', infos)):
        with open(tmp_path / name, 'wb') as f:
            pickle.dump(obj, f)
    out = tmp_path / 'errors.json'
    stats = tool.main([str(tmp_path / 'preds.pkl'), str(tmp_path / 'infos.pkl'), '--json', str(out)])
    assert stats['matched'] == 2 and json.loads(out.read_text())['num_gt'] == 2
    assert stats['terms']['x']['mean'] == pytest.approx(0.05)
    assert '2 of 2 ground-truth boxes matched' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.parse_args(['a', 'b', '--iou-thr', '1.5'])

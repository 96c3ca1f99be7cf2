"""Per-term errors of monocular 3D boxes against the ground truth, and which term costs the 3D IoU.

A mono-3D detector can find every object in 2D and still score a low KITTI 3D AP at IoU 0.7, because a
camera box is seven numbers and the strict overlap needs all of them nearly right. This tool matches the
predictions of ``tools/test.py --out`` to the ground-truth boxes of a KITTI-format info file and, for
the matched pairs, reports for each term (centre x, y, z, sizes l, h, w, yaw) its mean signed error,
its mean absolute error and its 90th percentile, and the share of pairs that would reach the IoU
threshold if that term alone were exact. The term whose correction lifts most pairs over the threshold
is the one that holds the strict AP down.

    python tools/test.py CONFIG CKPT --out preds.pkl
    python tools/analysis_tools/mono3d_box_errors.py preds.pkl data/toy_kitti/kitti_infos_val.pkl

Boxes are in the camera frame as mmdet3d's ``CameraInstance3DBoxes``: ``(x, y, z, l, h, w, yaw)``,
metres and radians, ``y`` the bottom centre (pointing down), ``z`` the depth along the optical axis.
"""
import argparse
import json
import pickle
import sys

import numpy as np

from mmsparse.evaluation.rotated_iou import rotated_intersection

TERMS = ('x', 'y', 'z', 'l', 'h', 'w', 'yaw')
YAW = 6


def wrap_angle(a: np.ndarray, period: float = 2 * np.pi) -> np.ndarray:
    """``a`` (radians, any shape) wrapped into ``[-period / 2, period / 2)``."""
    return (a + period / 2) % period - period / 2


def box3d_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Exact 3D IoU of paired camera boxes ``(N, 7)`` and ``(N, 7)``: ``(N, )`` in [0, 1].

    The rotated BEV intersection (``x, z, l, w, yaw``) is clipped exactly in float64 and multiplied by
    the height overlap, as KITTI's evaluation does (``mmsparse.evaluation.rotated_iou``).
    """
    boxes, others = np.asarray(boxes, np.float64), np.asarray(others, np.float64)
    if boxes.shape != others.shape or boxes.ndim != 2 or boxes.shape[1] != 7:
        raise ValueError(f'boxes: two (N, 7) arrays of the same shape expected, got {boxes.shape} and '
                         f'{others.shape}')
    bev = [0, 2, 3, 5, 6]
    inter = np.array([rotated_intersection(b[None, bev], o[None, bev])[0, 0] for b, o in zip(boxes, others)])
    # y is the bottom of the box and points down: a box spans [y - h, y]
    top = np.maximum(boxes[:, 1] - boxes[:, 4], others[:, 1] - others[:, 4])
    bottom = np.minimum(boxes[:, 1], others[:, 1])
    inter = inter.reshape(-1) * np.clip(bottom - top, 0, None)
    vol = boxes[:, 3] * boxes[:, 4] * boxes[:, 5] + others[:, 3] * others[:, 4] * others[:, 5]
    return inter / np.maximum(vol - inter, 1e-12)


def match_boxes(pred: np.ndarray, scores: np.ndarray, gt: np.ndarray, max_dist: float,
                score_thr: float) -> list:
    """Pair each ground-truth box with the highest-scoring prediction whose BEV centre lies within
    ``max_dist`` metres of it; each prediction is used once (ground truth taken nearest first).

    Args:
        pred: ``(P, 7)`` predicted camera boxes; scores: ``(P, )``; gt: ``(G, 7)``.
        max_dist: BEV centre distance (m) beyond which a prediction is not a match.
        score_thr: predictions scoring below it are ignored.

    Returns:
        ``[(gt_index, pred_index), ...]`` for the matched ground truth.
    """
    keep = np.flatnonzero(scores >= score_thr)
    if len(keep) == 0 or len(gt) == 0:
        return []
    dist = np.hypot(gt[:, None, 0] - pred[None, keep, 0], gt[:, None, 2] - pred[None, keep, 2])  # (G, K)
    used, pairs = set(), []
    for g in np.argsort(dist.min(axis=1)):
        cand = [k for k in np.flatnonzero(dist[g] <= max_dist) if k not in used]
        if cand:
            best = max(cand, key=lambda k: scores[keep[k]])
            used.add(best)
            pairs.append((int(g), int(keep[best])))
    return pairs


def observation_angle(boxes: np.ndarray) -> np.ndarray:
    """KITTI's observation angle ``yaw - atan2(x, z)`` of ``(N, 7)`` boxes, modulo pi around the
    ground truth's usual values: ``(N, )`` radians in ``[0, pi)``."""
    return np.mod(boxes[:, YAW] - np.arctan2(boxes[:, 0], boxes[:, 2]), np.pi)


def term_errors(pred: np.ndarray, gt: np.ndarray, iou_thr: float) -> dict:
    """Error statistics of matched pairs ``pred``/``gt`` ``(N, 7)``.

    Yaw errors are taken modulo pi (a box turned by pi covers the same volume), and the share of pairs
    whose heading is reversed is reported apart (``yaw_flipped``).

    Returns:
        ``{'matched', 'iou_mean', 'iou_ge_thr', 'yaw_flipped', 'alpha_std_ratio', 'alpha_corr', 'terms':
        {term: {'mean', 'mae', 'p90', 'iou_ge_thr_if_exact'}}}``; ``iou_ge_thr`` are shares of the
        matched pairs; ``alpha_*`` compare the predicted observation angle with the true one (spread
        ratio and correlation: near 0 when the model predicts one angle for every object).
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if len(pred) == 0:
        return dict(
            matched=0,
            iou_mean=0.0,
            iou_ge_thr=0.0,
            yaw_flipped=0.0,
            alpha_std_ratio=float('nan'),
            alpha_corr=float('nan'),
            terms={})
    err = pred - gt
    full_yaw = wrap_angle(err[:, YAW])
    err[:, YAW] = wrap_angle(err[:, YAW], np.pi)
    iou = box3d_iou(pred, gt)
    terms = {}
    for i, name in enumerate(TERMS):
        fixed = pred.copy()
        fixed[:, i] = gt[:, i]
        terms[name] = dict(
            mean=float(err[:, i].mean()),
            mae=float(np.abs(err[:, i]).mean()),
            p90=float(np.percentile(np.abs(err[:, i]), 90)),
            iou_ge_thr_if_exact=float((box3d_iou(fixed, gt) >= iou_thr).mean()))
    # the observation angle (yaw seen from the object's viewing ray) is what a detector reads off the
    # image; a model that has not learnt it predicts a near-constant one, whatever the car's heading
    alpha_gt, alpha_pred = (observation_angle(b) for b in (gt, pred))
    spread, pred_spread = float(alpha_gt.std()), float(alpha_pred.std())
    corr = float(np.corrcoef(alpha_gt,
                             alpha_pred)[0, 1]) if spread > 1e-9 and pred_spread > 1e-9 else float('nan')
    return dict(
        matched=len(pred),
        iou_mean=float(iou.mean()),
        iou_ge_thr=float((iou >= iou_thr).mean()),
        yaw_flipped=float((np.abs(full_yaw) > np.pi / 2).mean()),
        alpha_std_ratio=pred_spread / spread if spread > 1e-9 else float('nan'),
        alpha_corr=corr,
        terms=terms)


def _as_numpy(x):
    x = getattr(x, 'tensor', x)
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


def collect_pairs(results: list, infos: dict, label: int, max_dist: float, score_thr: float):
    """Matched ``(pred, gt)`` boxes ``(N, 7)`` of class ``label`` over all images, and the GT count."""
    by_idx = {d['sample_idx']: d for d in infos['data_list']}
    preds, gts, num_gt = [], [], 0
    for res in results:
        info = by_idx.get(res['sample_idx'])
        if info is None:
            raise KeyError(f"sample_idx {res['sample_idx']} of the predictions is not in the info file")
        gt = np.array([i['bbox_3d'] for i in info['instances'] if i['bbox_label_3d'] == label],
                      np.float64).reshape(-1, 7)
        num_gt += len(gt)
        inst = res['pred_instances_3d']
        sel = _as_numpy(inst['labels_3d']) == label
        pred = _as_numpy(inst['bboxes_3d']).reshape(-1, 7)[sel].astype(np.float64)
        scores = _as_numpy(inst['scores_3d'])[sel]
        for g, p in match_boxes(pred, scores, gt, max_dist, score_thr):
            preds.append(pred[p])
            gts.append(gt[g])
    return np.array(preds).reshape(-1, 7), np.array(gts).reshape(-1, 7), num_gt


def format_table(stats: dict, num_gt: int, iou_thr: float) -> str:
    lines = [
        f"{stats['matched']} of {num_gt} ground-truth boxes matched; mean 3D IoU {stats['iou_mean']:.3f}, "
        f"{100 * stats['iou_ge_thr']:.1f} % at IoU >= {iou_thr}; heading reversed in "
        f"{100 * stats['yaw_flipped']:.1f} % (yaw errors below are modulo pi); observation angle: "
        f"predicted / true spread {stats['alpha_std_ratio']:.2f}, correlation {stats['alpha_corr']:.2f}", '',
        f'| term | mean error | mean abs. error | 90th pct abs. | % IoU >= {iou_thr} if exact |',
        '|---|---|---|---|---|'
    ]
    for name, t in stats['terms'].items():
        unit = 'rad' if name == 'yaw' else 'm'
        lines.append(f"| {name} ({unit}) | {t['mean']:+.3f} | {t['mae']:.3f} | {t['p90']:.3f} | "
                     f"{100 * t['iou_ge_thr_if_exact']:.1f} |")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Per-term errors of mono-3D boxes (tools/test.py --out)')
    parser.add_argument('predictions', help='pickle written by tools/test.py --out')
    parser.add_argument('infos', help='KITTI-format info pickle of the same split (kitti_infos_val.pkl)')
    parser.add_argument('--label', type=int, default=2, help='class index (default 2: Car in KITTI order)')
    parser.add_argument('--iou-thr', type=float, default=0.7, help='3D IoU threshold, in (0, 1]')
    parser.add_argument('--max-dist', type=float, default=2.0, help='BEV matching radius in metres (> 0)')
    parser.add_argument('--score-thr', type=float, default=0.1, help='ignore predictions scoring below')
    parser.add_argument('--json', help='also write the statistics to this JSON file')
    args = parser.parse_args(argv)
    if not 0 < args.iou_thr <= 1:
        parser.error(f'--iou-thr must be in (0, 1], got {args.iou_thr}')
    if args.max_dist <= 0:
        parser.error(f'--max-dist must be > 0, got {args.max_dist}')
    return args


def main(argv=None):
    args = parse_args(argv)
    with open(args.predictions, 'rb') as f:
        results = pickle.load(f)
    with open(args.infos, 'rb') as f:
        infos = pickle.load(f)
    pred, gt, num_gt = collect_pairs(results, infos, args.label, args.max_dist, args.score_thr)
    stats = term_errors(pred, gt, args.iou_thr)
    print(format_table(stats, num_gt, args.iou_thr))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(num_gt=num_gt, **stats), f, indent=1)
    return stats


if __name__ == '__main__':
    sys.exit(0 if main() is not None else 1)

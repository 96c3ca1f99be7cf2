"""The mmcv ops our configs call at run time, from the wheel tools/install/build_mmcv.sh builds, equal
their definitions: torchvision's reference kernels, or exact polygon geometry (shapely).

The build uses a precompiled header and no debug info; neither may change a result. These are the ops
mmdet (Mask R-CNN: ``nms``, ``batched_nms``, ``RoIAlign``), mmdet3d (PGD: ``nms_rotated`` through
``nms_bev``, ``ModulatedDeformConv2d`` through ``dcn_on_last_conv``) use on CPU.
"""
import numpy as np
import pytest
import torch
import torchvision
from shapely.geometry import Polygon

mmcv_ops = pytest.importorskip('mmcv.ops')


def random_boxes(n, seed, size=100.0):
    """``(n, 4)`` x1y1x2y2 boxes in a ``size``-pixel image, many overlapping, and distinct scores."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size * 0.8
    wh = torch.rand(n, 2, generator=g) * size * 0.3 + 2
    scores = torch.randperm(n, generator=g).float() / n + 0.01
    return torch.cat([xy, xy + wh], 1), scores


@pytest.mark.parametrize('iou', [0.3, 0.5, 0.7])
def test_nms_keeps_what_torchvision_keeps(iou):
    boxes, scores = random_boxes(300, seed=1)
    dets, keep = mmcv_ops.nms(boxes, scores, iou)
    expected = torchvision.ops.nms(boxes, scores, iou)
    assert keep.tolist() == expected.tolist()
    assert torch.equal(dets[:, :4], boxes[expected]) and torch.equal(dets[:, 4], scores[expected])


def test_batched_nms_keeps_what_torchvision_keeps_per_class():
    boxes, scores = random_boxes(400, seed=2)
    labels = torch.randint(0, 5, (400, ), generator=torch.Generator().manual_seed(3))
    dets, keep = mmcv_ops.batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=0.5))
    expected = torchvision.ops.batched_nms(boxes, scores, labels, 0.5)
    assert sorted(keep.tolist()) == sorted(expected.tolist())
    assert torch.equal(dets[:, -1], scores[keep])


@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_roi_align_forward_and_backward_equal_torchvision(sampling_ratio):
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(2, 8, 32, 40, generator=g, dtype=torch.float64)
    boxes, _ = random_boxes(24, seed=5, size=120.0)
    rois = torch.cat([torch.randint(0, 2, (24, 1), generator=g).double(), boxes.double()], 1)
    x_mm = feats.clone().requires_grad_()
    x_tv = feats.clone().requires_grad_()
    out_mm = mmcv_ops.RoIAlign((7, 7), 0.25, sampling_ratio, pool_mode='avg', aligned=True)(x_mm, rois)
    out_tv = torchvision.ops.roi_align(x_tv, rois, (7, 7), 0.25, sampling_ratio, aligned=True)
    torch.testing.assert_close(out_mm, out_tv, rtol=1e-12, atol=1e-12)
    weight = torch.randn(out_tv.shape, generator=g, dtype=torch.float64)
    (out_mm * weight).sum().backward()
    (out_tv * weight).sum().backward()
    torch.testing.assert_close(x_mm.grad, x_tv.grad, rtol=1e-10, atol=1e-10)


def rotated_polygon(box):
    """Corners of a ``(cx, cy, w, h, angle)`` box, angle in radians and clockwise in image coordinates
    (y pointing down), mmcv's default ``clockwise=True``."""
    cx, cy, w, h, a = box
    c, s = np.cos(a), np.sin(a)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return Polygon(corners @ np.array([[c, s], [-s, c]]) + [cx, cy])


def greedy_rotated_nms(boxes, scores, iou_threshold):
    """Reference NMS with exact polygon IoUs: visit by descending score, drop boxes above the threshold."""
    polys = [rotated_polygon(b) for b in boxes.tolist()]
    keep = []
    for i in torch.argsort(scores, descending=True).tolist():
        if all(polys[i].intersection(polys[j]).area / polys[i].union(polys[j]).area <= iou_threshold
               for j in keep):
            keep.append(i)
    return keep


def test_nms_rotated_keeps_what_exact_polygon_nms_keeps():
    g = torch.Generator().manual_seed(6)
    n = 120
    centers = torch.rand(n, 2, generator=g) * 60
    sizes = torch.rand(n, 2, generator=g) * 12 + 3
    angles = (torch.rand(n, 1, generator=g) - 0.5) * np.pi
    boxes = torch.cat([centers, sizes, angles], 1)
    scores = torch.randperm(n, generator=g).float() / n + 0.01
    polys = [rotated_polygon(b) for b in boxes.tolist()]
    ious = np.array([[p.intersection(q).area / p.union(q).area for q in polys] for p in polys])
    threshold = 0.3
    # no pair sits so close to the threshold that float rounding could decide it
    assert np.abs(ious[~np.eye(n, dtype=bool)] - threshold).min() > 1e-4
    _, keep = mmcv_ops.nms_rotated(boxes, scores, threshold, clockwise=True)
    assert sorted(keep.tolist()) == sorted(greedy_rotated_nms(boxes, scores, threshold))
    assert 10 < len(keep) < n  # the case suppresses some boxes and keeps many


def test_box_iou_rotated_equals_exact_polygon_iou():
    g = torch.Generator().manual_seed(8)
    boxes = torch.cat([
        torch.rand(40, 2, generator=g) * 20,
        torch.rand(40, 2, generator=g) * 8 + 1, (torch.rand(40, 1, generator=g) - 0.5) * np.pi
    ], 1).double()
    polys = [rotated_polygon(b) for b in boxes.tolist()]
    exact = torch.tensor([[p.intersection(q).area / p.union(q).area for q in polys] for p in polys],
                         dtype=torch.float64)
    torch.testing.assert_close(
        mmcv_ops.box_iou_rotated(boxes.float(), boxes.float()).double(), exact, rtol=0, atol=2e-5)


def test_nms_bev_of_mmdet3d_runs_the_rotated_op_on_cpu():
    from mmdet3d.models.layers import nms_bev
    boxes = torch.tensor([[0., 0, 4, 2, 0], [0.2, 0, 4.2, 2, 0], [10, 10, 14, 12, 0.3]])
    keep = nms_bev(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_modulated_deform_conv_equals_torchvision_deform_conv2d_with_mask():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 6, 9, 11, generator=g, dtype=torch.float64)
    conv = mmcv_ops.ModulatedDeformConv2d(6, 4, 3, stride=1, padding=1, bias=True).double()
    with torch.no_grad():
        conv.weight.normal_(generator=g)
        conv.bias.normal_(generator=g)
    offset = torch.randn(2, 18, 9, 11, generator=g, dtype=torch.float64) * 2
    mask = torch.rand(2, 9, 9, 11, generator=g, dtype=torch.float64)
    x_mm = x.clone().requires_grad_()
    x_tv = x.clone().requires_grad_()
    out_mm = conv(x_mm, offset, mask)
    out_tv = torchvision.ops.deform_conv2d(x_tv, offset, conv.weight, conv.bias, padding=1, mask=mask)
    torch.testing.assert_close(out_mm, out_tv, rtol=1e-10, atol=1e-10)
    out_mm.sum().backward()
    out_tv.sum().backward()
    torch.testing.assert_close(x_mm.grad, x_tv.grad, rtol=1e-9, atol=1e-9)

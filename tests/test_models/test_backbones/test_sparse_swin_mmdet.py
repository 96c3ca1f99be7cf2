"""Mask R-CNN (mmdet's Swin-T config) with ``type='mmsparse.SparseSwin'``: loss forward and backward."""
import math

import pytest
import torch
from mmengine.config import Config

from mmsparse.sparsity.ratios import PUBLISHED_RATIOS

CFG2 = PUBLISHED_RATIOS['cfg2']

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def detector(tmp_path_factory):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg_file = tmp_path_factory.mktemp('cfg') / 'sparse_mask_rcnn.py'
    # the user-facing config: mmdet's, with only the backbone type, ratios and init changed
    cfg_file.write_text(
        "_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)\n"
        f"model = dict(backbone=dict(type='mmsparse.SparseSwin', pruning_ratios={CFG2!r}, "
        'init_cfg=None, drop_path_rate=0.))\n')  # DropPath would zero whole branches at batch 1
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.backbone.depths == [2, 2, 6, 2]
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_mask_rcnn_loss_backward(detector):
    from mmdet.testing import demo_mm_inputs

    from mmsparse.models.backbones import SparseSwin
    assert isinstance(detector.backbone, SparseSwin)
    assert detector.backbone.get_pruning_ratios() == CFG2
    detector.train()
    detector.backbone.record_selection = True
    packed = demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 224, 224)], num_items=[1], num_classes=80, with_mask=True)
    data = detector.data_preprocessor(packed, training=True)
    losses = detector(**data, mode='loss')
    total = 0.
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        value = sum(value) if isinstance(value, (list, tuple)) else value
        assert math.isfinite(value.item()), name
        total = total + value
    for name in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert name in losses
    total.backward()
    # at 224^2: stage 0 keeps 25 of 64 windows, stage 2 keeps 3/3/2/2/2/2 of 4
    sel = detector.backbone.last_selection
    assert [k.shape[1] for k in sel[0]] == [25, 25]
    assert [k.shape[1] for k in sel[2]] == [3, 3, 2, 2, 2, 2]
    # every block keeps >= 1 window, so every backbone parameter gets a gradient
    for name, p in detector.backbone.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name

"""mmsparse registries: children of mmengine's roots, reachable as ``mmsparse.X`` from every task."""
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

from mmsparse.registry import HOOKS, LOOPS, MODELS, OPTIM_WRAPPERS


@MODELS.register_module(force=True)
class TinyTestBackbone(nn.Module):
    """A registered toy backbone: one conv, output stride 2, returns a tuple like OpenMMLab backbones."""

    def __init__(self, in_channels=3, out_channels=8):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        self.out_channels = out_channels

    def forward(self, x):
        return (self.conv(x), )

    def init_weights(self):
        pass


def test_registries_are_children_of_mmengine_roots():
    import mmengine.registry as root
    for ours, parent in ((MODELS, root.MODELS), (HOOKS, root.HOOKS), (LOOPS, root.LOOPS),
                         (OPTIM_WRAPPERS, root.OPTIM_WRAPPERS)):
        assert ours.scope == 'mmsparse'
        assert ours.parent is parent
        assert parent.children['mmsparse'] is ours


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain', 'mmdet3d'])
def test_cross_scope_backbone_build(scope):
    """Each task package builds ``mmsparse.TinyTestBackbone`` through its own MODELS registry."""
    registry_module = __import__(f'{scope}.registry', fromlist=['MODELS'])
    with DefaultScope.overwrite_default_scope(scope):
        backbone = registry_module.MODELS.build(dict(type='mmsparse.TinyTestBackbone', out_channels=4))
    assert type(backbone) is TinyTestBackbone
    assert backbone(torch.zeros(1, 3, 8, 8))[0].shape == (1, 4, 4, 4)


def _build_task_model(scope):
    tiny = dict(type='mmsparse.TinyTestBackbone', out_channels=8)
    if scope == 'mmpretrain':
        cfg = dict(
            type='ImageClassifier',
            backbone=tiny,
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=5, in_channels=8))
    elif scope == 'mmseg':
        cfg = dict(
            type='EncoderDecoder',
            backbone=tiny,
            decode_head=dict(
                type='FCNHead',
                in_channels=8,
                channels=8,
                num_convs=1,
                num_classes=5,
                norm_cfg=dict(type='BN')))
    else:  # mmdet / mmdet3d: a one-stage detector on top of the backbone
        cfg = dict(
            type='RetinaNet',
            backbone=tiny,
            neck=dict(type='mmdet.FPN', in_channels=[8], out_channels=8, num_outs=1),
            bbox_head=dict(
                type='mmdet.RetinaHead',
                num_classes=3,
                in_channels=8,
                feat_channels=8,
                stacked_convs=1,
                anchor_generator=dict(
                    type='AnchorGenerator',
                    octave_base_scale=4,
                    scales_per_octave=1,
                    ratios=[1.0],
                    strides=[2]),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                loss_bbox=dict(type='L1Loss')))
        if scope == 'mmdet3d':  # the same detector, its mmdet parts named from the mmdet3d scope
            cfg['type'] = 'mmdet.RetinaNet'
            head = cfg['bbox_head']
            for key in ('anchor_generator', 'bbox_coder', 'loss_cls', 'loss_bbox'):
                head[key]['type'] = 'mmdet.' + head[key]['type']
    registry_module = __import__(f'{scope}.registry', fromlist=['MODELS'])
    with DefaultScope.overwrite_default_scope(scope):
        return registry_module.MODELS.build(cfg)


@pytest.mark.parametrize('scope,expected', [('mmpretrain', (2, 5)), ('mmseg', (2, 5, 4, 4)),
                                            ('mmdet', (2, 3 * 4 * 4)), ('mmdet3d', (2, 3 * 4 * 4))])
def test_task_models_with_mmsparse_backbone(scope, expected):
    """A stock model of each package, with the backbone replaced by ``mmsparse.X``, runs forward."""
    model = _build_task_model(scope).eval()
    assert isinstance(model.backbone, TinyTestBackbone)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        if scope == 'mmpretrain':
            out = model(x, mode='tensor')
        elif scope == 'mmseg':
            out = model(x, mode='tensor')
        else:
            cls_scores, _ = model(x, mode='tensor')
            out = cls_scores[0].flatten(1)
    assert tuple(out.shape) == expected


def test_mmsparse_hook_and_optim_wrapper_from_other_scope():
    from mmdet.registry import HOOKS as DET_HOOKS
    from mmpretrain.registry import OPTIM_WRAPPERS as CLS_OPTIM_WRAPPERS
    with DefaultScope.overwrite_default_scope('mmdet'):
        hook = DET_HOOKS.build(dict(type='mmsparse.DistConsistencyHook', interval=3))
    assert type(hook).__name__ == 'DistConsistencyHook' and hook.interval == 3
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = CLS_OPTIM_WRAPPERS.build(dict(type='mmsparse.CPUAmpOptimWrapper', optimizer=optimizer))
    with wrapper.optim_context(model):
        assert model(torch.randn(1, 2)).dtype == torch.bfloat16


def test_lazy_import_through_locations():
    """A fresh process that never imports mmsparse.engine still finds mmsparse hooks by name."""
    code = ('from mmengine.registry import HOOKS, DefaultScope\n'
            'import sys\n'
            'with DefaultScope.overwrite_default_scope("mmdet"):\n'
            '    h = HOOKS.build(dict(type="mmsparse.DistConsistencyHook"))\n'
            'print(type(h).__module__)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'mmsparse.engine.hooks.dist_consistency_hook'


def test_register_all_modules_sets_scope():
    from mmsparse.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    assert DefaultScope.get_current_instance().scope_name == 'mmsparse'
    assert MODELS.get('TinyTestBackbone') is TinyTestBackbone

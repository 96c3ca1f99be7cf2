"""SparseViT classification configs: every variant parses and builds an mmpretrain classifier whose
backbone is a SparseSwin carrying the variant's ratios; the toy classifier runs forward."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse.sparsity.ratios import validate_pruning_ratios
from tests.tool_runner import REPO_ROOT

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs/sparsevit/swin_t_in1k*.py')))
CFG2 = [list(s) for s in validate_pruning_ratios('cfg2', (2, 2, 6, 2))]


def build(path):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_builds_sparse_swin_classifier(path):
    from mmsparse.models.backbones import SparseSwin
    cfg, model = build(path)
    assert isinstance(model.backbone, SparseSwin)
    toy = path.endswith('_toy.py')
    assert model.backbone.num_features[0] == (32 if toy else 96)
    assert model.head.num_classes == (8 if toy else 1000)
    expected = CFG2 if 'finetune' in path else [[0.0] * d for d in (2, 2, 6, 2)]
    assert model.backbone.get_pruning_ratios() == expected
    if '_saa' in path:
        assert cfg.custom_hooks[0]['type'] == 'mmsparse.SparsityAwareAdaptationHook'
    if '_search' in path:
        assert cfg.search_loop['score_key'] == 'accuracy/top1'


def test_toy_classifier_forward_with_ratios():
    _, model = build(osp.join(REPO_ROOT, 'configs/sparsevit/swin_t_in1k_toy.py'))
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        dense = model(x, mode='tensor')
        model.backbone.set_pruning_ratios(CFG2)
        sparse = model(x, mode='tensor')
    assert dense.shape == sparse.shape == (2, 8)
    assert not torch.equal(dense, sparse)  # the ratios bind to the backbone the classifier runs

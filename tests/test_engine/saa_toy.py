"""A tiny SparseSwin classifier for the SAA hook tests (also importable from a config through
``custom_imports=['tests.test_engine.saa_toy']`` to run it under tools/dist_train.sh)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmsparse.registry import MODELS

#: Swin-T depths, 16 channels: the real search space at a CPU-friendly width
SWIN_KW = dict(
    embed_dims=16,
    depths=(2, 2, 6, 2),
    num_heads=(1, 2, 2, 4),
    window_size=7,
    patch_size=4,
    mlp_ratio=4,
    out_indices=(3, ),
    min_keep=1)


@MODELS.register_module()
class LastMapGAP(nn.Module):
    """Neck for a list/tuple of maps (mmdet-style backbones): global-average-pool the last one."""

    def forward(self, inputs):
        return (inputs[-1].mean((2, 3)), )


class SwinToyClassifier(BaseModel):
    """SparseSwin (Swin-T depths, 16 channels) + linear head on (B, 3, H, W) tensors."""

    def __init__(self, num_classes=4):
        super().__init__()
        from mmsparse.models.backbones import SparseSwin
        self.backbone = SparseSwin(**SWIN_KW)
        self.head = nn.Linear(16 * 8, num_classes)
        self.seen = []  # (training, ratios) at every backbone forward

    def forward(self, inputs, labels=None, mode='tensor'):
        self.seen.append((self.training, self.backbone.get_pruning_ratios()))
        logits = self.head(self.backbone(inputs)[-1].mean((2, 3)))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            return [dict(pred=logits.argmax(1)[i], gt=labels[i]) for i in range(len(labels))]
        return logits


class SwinToyData(torch.utils.data.Dataset):

    def __init__(self, n=16, size=(56, 64)):
        g = torch.Generator().manual_seed(2)
        self.x = torch.randn(n, 3, *size, generator=g)
        self.y = torch.randint(0, 4, (n, ), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])

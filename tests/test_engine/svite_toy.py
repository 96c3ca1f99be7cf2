"""A tiny mmengine model and in-memory data for the SViTE wrapper / hook tests (fast on a CPU)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch.utils.data import DataLoader, Dataset


class ToyNet(BaseModel):
    """backbone (two linears) + head; names match the hook's default scope ``^backbone\\.|^head\\.``."""

    def __init__(self, in_dim=8, hidden=24, num_classes=4):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.head(self.backbone(inputs))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits.float(), labels))
        if mode == 'predict':
            return [dict(pred=p, gt=g) for p, g in zip(logits.argmax(1), labels)]
        return logits


class ToyData(Dataset):
    """Deterministic Gaussian inputs with labels from a fixed random linear teacher."""

    def __init__(self, n=64, in_dim=8, num_classes=4, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, in_dim, generator=g)
        self.y = (self.x @ torch.randn(in_dim, num_classes, generator=g)).argmax(1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def toy_loader(batch_size=8, **kwargs):
    return DataLoader(ToyData(**kwargs), batch_size=batch_size, shuffle=False)


def toy_batches(n, batch_size=8, seed=0):
    data = ToyData(n=n * batch_size, seed=seed)
    return [(data.x[i * batch_size:(i + 1) * batch_size], data.y[i * batch_size:(i + 1) * batch_size])
            for i in range(n)]

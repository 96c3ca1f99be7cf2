"""Test-only hook (``custom_imports``): which dtypes the model's linear and conv layers compute in."""
import json
import os.path as osp

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn


@HOOKS.register_module(force=True)
class DtypeProbeHook(Hook):
    """Records the output dtype of every ``nn.Linear`` / ``nn.Conv2d`` call inside training iterations
    (not the validation mmengine runs after the last one) and writes ``{dtype: [layer names]}`` to
    ``<work_dir>/layer_dtypes.json``."""

    def before_train(self, runner):
        self.dtypes = {}
        self.in_train_iter = False
        self.handles = [
            m.register_forward_hook(self._record(name)) for name, m in runner.model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv2d))
        ]

    def _record(self, name):

        def hook(module, inputs, output):
            if self.in_train_iter:
                self.dtypes.setdefault(str(output.dtype), set()).add(name)

        return hook

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.in_train_iter = True

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.in_train_iter = False

    def after_train(self, runner):
        for h in self.handles:
            h.remove()
        with open(osp.join(runner.work_dir, 'layer_dtypes.json'), 'w') as f:
            json.dump({k: sorted(v) for k, v in self.dtypes.items()}, f)

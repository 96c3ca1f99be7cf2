"""Check that every rank holds bit-identical parameters (and buffers) after distributed training."""
import hashlib
import json
import os.path as osp
from typing import Dict

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsparse.registry import HOOKS


def state_fingerprint(model: torch.nn.Module, include_buffers: bool = False) -> Dict[str, str]:
    """SHA-256 of every parameter's (and optionally buffer's) bytes, keyed by name.

    Buffers are off by default: mmengine's DDP does not broadcast them, so e.g. BatchNorm running
    statistics legitimately differ between ranks unless SyncBN is used.
    """
    if is_model_wrapper(model):
        model = model.module
    tensors = dict(model.named_parameters())
    if include_buffers:
        tensors.update(model.named_buffers())
    prints = {}
    for name, tensor in tensors.items():
        data = tensor.detach().cpu().contiguous()
        prints[name] = hashlib.sha256(
            data.view(torch.uint8).numpy().tobytes() if data.numel() else b'').hexdigest()
    return prints


@HOOKS.register_module()
class DistConsistencyHook(Hook):
    """Gather a fingerprint of the model's parameters from every rank and compare them.

    Runs after training (and every ``interval`` iterations if ``interval > 0``). Rank 0 writes
    ``<work_dir>/param_fingerprints.json`` (``{"world_size": N, "ranks": [{name: sha256}, ...],
    "mismatched": [...]}``) and, with ``strict=True``, raises if any tensor differs between ranks.

    Args:
        interval (int): also check every ``interval`` training iterations; 0 = only at the end.
        strict (bool): raise ``RuntimeError`` on a mismatch instead of only logging it.
        include_buffers (bool): compare buffers too (only meaningful with SyncBN or no BN).
    """
    priority = 'VERY_LOW'

    def __init__(self, interval: int = 0, strict: bool = True, include_buffers: bool = False):
        self.interval = interval
        self.strict = strict
        self.include_buffers = include_buffers

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.interval > 0 and self.every_n_train_iters(runner, self.interval):
            self._check(runner)

    def after_train(self, runner):
        self._check(runner)

    def _check(self, runner):
        prints = all_gather_object(state_fingerprint(runner.model, self.include_buffers))
        mismatched = sorted(k for k in prints[0] if any(p.get(k) != prints[0][k] for p in prints[1:]))
        if is_main_process():
            with open(osp.join(runner.work_dir, 'param_fingerprints.json'), 'w') as f:
                json.dump(
                    dict(world_size=get_world_size(), iter=runner.iter, ranks=prints, mismatched=mismatched),
                    f)
        msg = (f'DistConsistencyHook: {len(prints[0])} tensors, {get_world_size()} ranks, '
               f'{len(mismatched)} mismatched (rank {get_rank()})')
        runner.logger.info(msg)
        if mismatched and self.strict:
            raise RuntimeError(f'{msg}: {mismatched[:10]}')

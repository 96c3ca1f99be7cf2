"""``SparsityAwareAdaptationHook``: SparseViT's sparsity-aware adaptation (docs/method/sparsevit.md, 3.1).

Every training iteration sets one random layer-wise window-pruning configuration on every module of
the model that has ``set_pruning_ratios`` (``SparseSwin``). The draw is a function of
``(seed, optimizer step)`` only (:meth:`SwinRatioSpace.sample_at`), so all ranks agree without
communication and a resumed run repeats the sequence. Validation and test use ``val_ratios``
(dense by default); nothing is sampled there. The sampler is the torch-free
``mmsparse.sparsity.search_space`` and the MACs come from the backbone's own ``macs()``; this file only
calls them at the right moments.
"""
import json
import os.path as osp
from typing import Optional, Sequence

from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import Hook

from mmsparse.registry import HOOKS
from mmsparse.sparsity.ratios import validate_pruning_ratios
from mmsparse.sparsity.search_space import DEFAULT_CHOICES, SwinRatioSpace
from ..ratio_targets import find_ratio_targets

__all__ = ['SparsityAwareAdaptationHook']

SAMPLERS = ('per_stage_sorted', )


@HOOKS.register_module()
class SparsityAwareAdaptationHook(Hook):
    """Random per-iteration window-pruning ratios for SAA training.

    Args:
        choices: the ratio grid (default 0, 0.1, ..., 0.8).
        sample: 'per_stage_sorted' (docs/method/sparsevit.md, 3.1: per stage depth/2 i.i.d. grid
            draws, sorted ascending).
        val_ratios: ratios for val/test: None (dense), a named set ('cfg2'), per-stage per-block lists,
            or a genes dict.
        fixed: genes the space keeps fixed, e.g. ``{'s0': 0.0}`` (see ``SwinRatioSpace``).
        seed: seed of the draw; None = rank 0's runner seed.
        log_macs: log the MACs per image of the sampled ratios (the backbone's ``macs(hw, ratios)``;
            the input size is read from the backbone's input at each forward).
        debug: every rank appends ``{"iter", "genes", "ratios", "macs"}`` per iteration to
            ``<work_dir>/saa_ratios_rank{r}.jsonl``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 choices: Sequence[float] = DEFAULT_CHOICES,
                 sample: str = 'per_stage_sorted',
                 val_ratios=None,
                 fixed: Optional[dict] = None,
                 seed: Optional[int] = None,
                 log_macs: bool = True,
                 debug: bool = False):
        if sample not in SAMPLERS:
            raise ValueError(f'SparsityAwareAdaptationHook: `sample` must be one of {SAMPLERS}, '
                             f'got {sample!r}')
        self.choices = tuple(choices)
        self.sample = sample
        self.val_ratios_cfg = val_ratios
        self.fixed = fixed
        self.seed = seed
        self.log_macs = log_macs
        self.debug = debug
        self.targets = None
        self.space: Optional[SwinRatioSpace] = None
        self.last_ratios = None
        self.last_genes = None
        self._input_hw = {}  # id(target) -> (H, W) of the last forward

    # ------------------------------------------------------------------ setup
    def _setup(self, runner) -> None:
        if self.targets is not None:
            return
        self.targets = [m for _, m in find_ratio_targets(runner.model, 'SparsityAwareAdaptationHook')]
        depths = {tuple(len(s) for s in t.get_pruning_ratios()) for t in self.targets}
        if len(depths) != 1:
            raise ValueError(f'SparsityAwareAdaptationHook: backbones with different depths {depths}')
        if self.log_macs and not callable(getattr(self.targets[0], 'macs', None)):
            raise ValueError(
                f'SparsityAwareAdaptationHook: log_macs=True needs a backbone with macs(hw, ratios) '
                f'(such as mmsparse.SparseSwin); {type(self.targets[0]).__name__} has none: set '
                'log_macs=False')
        self.space = SwinRatioSpace(depths=depths.pop(), choices=self.choices, fixed=self.fixed)
        self.val_ratios = self._resolve_val_ratios(self.val_ratios_cfg)
        if self.seed is None:
            seed = [int(runner.seed or 0)]
            broadcast_object_list(seed, src=0)  # ranks may have different seeds (diff_rank_seed)
            self.seed = seed[0]
        for t in self.targets:
            t.register_forward_pre_hook(self._record_input)

    def _resolve_val_ratios(self, cfg):
        if cfg is None:
            return [[0.0] * d for d in self.space.depths]
        if isinstance(cfg, dict):
            return self.space.to_block_ratios(cfg)
        # a named set ('cfg2'), one float, or per-stage lists; checked for length, range and order
        return [list(s) for s in validate_pruning_ratios(cfg, self.space.depths, name='val_ratios')]

    def _record_input(self, module, args):
        self._input_hw[id(module)] = tuple(args[0].shape[-2:])

    def before_run(self, runner) -> None:
        self._setup(runner)

    # ------------------------------------------------------------------ train / val / test
    def sample_at(self, iteration: int):
        """(genes, per-stage block ratios) of training iteration ``iteration`` (0-based)."""
        genes = self.space.sample_at(self.seed, iteration)
        return genes, self.space.to_block_ratios(genes)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._setup(runner)
        # one configuration per optimizer step: micro-batches of an accumulated step share it
        acc = int(getattr(runner.optim_wrapper, '_accumulative_counts', 1))
        self.last_genes, self.last_ratios = self.sample_at(runner.iter // acc)
        self._set(self.last_ratios)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.last_ratios is None:
            return
        macs = self.macs(self.last_ratios) if self.log_macs else None
        if macs is not None:
            runner.message_hub.update_scalar('train/saa_gmacs', macs / 1e9)
        if self.debug:
            path = osp.join(runner.work_dir, f'saa_ratios_rank{get_rank()}.jsonl')
            with open(path, 'a') as f:
                f.write(
                    json.dumps(
                        dict(iter=runner.iter, genes=self.last_genes, ratios=self.last_ratios, macs=macs)) +
                    '\n')

    def before_val_epoch(self, runner) -> None:
        self._setup(runner)
        self._set(self.val_ratios)

    def before_test_epoch(self, runner) -> None:
        self._setup(runner)
        self._set(self.val_ratios)

    def _set(self, ratios) -> None:
        for t in self.targets:
            t.set_pruning_ratios([list(s) for s in ratios])

    # ------------------------------------------------------------------ cost
    def macs(self, ratios) -> Optional[int]:
        """MACs per image of the first backbone at its last input size (None before a forward), by
        the backbone's own ``macs(hw, ratios)``."""
        target = self.targets[0]
        hw = self._input_hw.get(id(target))
        if hw is None:
            return None
        return target.macs(hw, ratios)

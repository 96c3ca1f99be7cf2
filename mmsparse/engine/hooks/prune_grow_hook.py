"""``PruneGrowHook``: SViTE (unstructured) / S2ViTE (structured) dynamic sparse training.

The hook only wires :class:`~mmsparse.sparsity.dynamic_sparsity.PruneGrowController` into the
runner's life cycle (docs/method/svite.md, 1.5):

- ``before_run``: refuse an optimizer wrapper that cannot run the update (no gradient survives to
  ``after_train_iter``, see ``svite_optim_wrapper``);
- ``before_train``: build the masks on the unwrapped model (after weight init / checkpoint load),
  set T_total from the runner, restore a resumed state, attach the controller to the wrapper, mask
  the EMA copy;
- ``before_train_iter``: arm head-score capture before a structured update step;
- ``after_train_iter`` (priority LOW, i.e. after ``EMAHook``): log the update that ``step()`` made
  and keep the EMA copy sparse;
- ``before_save_checkpoint`` / ``after_load_checkpoint``: the controller state under
  ``checkpoint['svite']`` (masks, t, pending flag, RNG streams, T_total).
"""
import json
import math
import os.path as osp
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

from mmsparse.registry import HOOKS
from mmsparse.sparsity.dynamic_sparsity import PruneGrowController
from mmsparse.sparsity.erk import check_density
from mmsparse.sparsity.masks import ParameterMasker
from mmsparse.sparsity.prune_grow import DECAY_MODES, resolve_t_end
from mmsparse.sparsity.token_selection import temperature
from ..optimizers.svite_optim_wrapper import SViTEStepMixin

__all__ = ['PruneGrowHook']

#: masked by default: the backbone and, for classifiers, the classification head (reference code)
DEFAULT_INCLUDE = (r'^backbone\.', r'^head\.')
CKPT_KEY = 'svite'


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def _check_choice(field, value, allowed):
    if value not in allowed:
        raise ValueError(f'PruneGrowHook: `{field}` must be one of {allowed}, got {value!r}')
    return value


@HOOKS.register_module()
class PruneGrowHook(Hook):
    """Dynamic sparse training of any model (unstructured) or SparseDeiT (structured).

    Args:
        mode: 'unstructured' (SViTE weights), 'structured' (S2ViTE heads and neurons of every
            backbone built with ``structured=dict(...)``) or 'none' (masks off).
        density: kept fraction d in (0, 1] of the masked weights (unstructured); 1.0 = no masks.
        distribution: per-layer densities, 'erk' or 'uniform'.
        delta_t: Delta T, optimizer steps between updates (alias ``update_interval``).
        t_end: last update strictly before T_end: int steps, or float in (0, 1] x T_total.
        alpha: initial prune fraction in (0, 1) (alias ``death_rate``).
        min_death_rate: r_min of the reference cosine, in [0, alpha).
        decay: 'cosine' (= 'cosine_t_end' with ``algorithm1``, else 'cosine_reference'), or one of
            'cosine_reference', 'cosine_t_end', 'constant'.
        prune: 'magnitude' (the only criterion).
        grow: 'gradient' or 'random' (alias ``growth``).
        algorithm1: follow the paper's Algorithm 1 (update steps skip the optimizer step).
        scope: dict(include=[regex], exclude=[regex]) on parameter names of the unwrapped model;
            default include ``^backbone\\.`` and ``^head\\.``.
        sampling: 'exact' or 'bernoulli' initial masks. init_source: 'random' or 'magnitude'.
        optimizer_state: 'keep' (default) or 'mask' (zero the moments of inactive weights).
        structured: dict(score_sync='all_reduce'|'rank0', mlp_growth='gradient'|'random');
            head/MLP densities belong to ``model.backbone.structured``.
        tau: (start, end) of the SViTE+ token-selector temperature, linear in the optimizer step
            (docs/method/svite.md, 3.2); applied to every module with a ``tau`` attribute and a ``scorer``.
        seed: mask RNG seed; None = the runner's seed (masks are broadcast from rank 0 anyway).
        debug: every rank appends one JSON line per update (t, rate, per-layer counts, mask
            digest) to ``<work_dir>/svite_updates_rank{r}.jsonl``.
    """

    priority = 'LOW'  # after EMAHook (NORMAL / ABOVE_NORMAL) so the EMA copy is masked last

    def __init__(self,
                 mode: str = 'unstructured',
                 density: float = 0.5,
                 distribution: str = 'erk',
                 delta_t: Optional[int] = None,
                 t_end: Union[int, float] = 0.8,
                 alpha: Optional[float] = None,
                 min_death_rate: float = 0.005,
                 decay: str = 'cosine',
                 prune: str = 'magnitude',
                 grow: Optional[str] = None,
                 algorithm1: bool = False,
                 scope: Optional[dict] = None,
                 sampling: str = 'exact',
                 init_source: str = 'random',
                 optimizer_state: str = 'keep',
                 structured: Optional[dict] = None,
                 tau: Sequence[float] = (10.0, 0.1),
                 seed: Optional[int] = None,
                 debug: bool = False,
                 update_interval: Optional[int] = None,
                 death_rate: Optional[float] = None,
                 growth: Optional[str] = None):
        self.mode = _check_choice('mode', mode, ('unstructured', 'structured', 'none'))
        self.density = check_density(density, 'density')
        self.distribution = _check_choice('distribution', distribution, ('erk', 'uniform'))
        interval = delta_t if delta_t is not None else update_interval
        interval = 20000 if interval is None else interval
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f'PruneGrowHook: `delta_t` must be an int >= 1, got {interval!r}')
        self.update_interval = interval
        resolve_t_end(t_end, 1 if isinstance(t_end, float) else max(int(t_end), 1))  # validate
        self.t_end = t_end
        rate = alpha if alpha is not None else death_rate
        self.death_rate = 0.5 if rate is None else rate
        if isinstance(self.death_rate, bool) or not isinstance(self.death_rate, (int, float)) \
                or not 0.0 < self.death_rate < 1.0:
            raise ValueError(f'PruneGrowHook: `alpha` must be in (0, 1), got {self.death_rate!r}')
        if not 0.0 <= min_death_rate < self.death_rate:
            raise ValueError(f'PruneGrowHook: `min_death_rate` must be in [0, alpha='
                             f'{self.death_rate}), got {min_death_rate!r}')
        self.min_death_rate = float(min_death_rate)
        self.algorithm1 = bool(algorithm1)
        if decay == 'cosine':
            decay = 'cosine_t_end' if self.algorithm1 else 'cosine_reference'
        self.decay = _check_choice('decay', decay, ('cosine', ) + DECAY_MODES)
        _check_choice('prune', prune, ('magnitude', ))
        g = grow if grow is not None else growth
        self.growth = _check_choice('grow', 'gradient' if g is None else g, ('gradient', 'random'))
        scope = dict(scope or {})
        unknown = set(scope) - {'include', 'exclude'}
        if unknown:
            raise ValueError(f'PruneGrowHook: `scope` takes include/exclude, got {sorted(unknown)}')
        self.include = list(scope.get('include', DEFAULT_INCLUDE))
        self.exclude = list(scope.get('exclude', []))
        self.sampling = _check_choice('sampling', sampling, ('exact', 'bernoulli'))
        self.init_source = _check_choice('init_source', init_source, ('random', 'magnitude'))
        self.optimizer_state = _check_choice('optimizer_state', optimizer_state, ('keep', 'mask'))
        structured = dict(structured or {})
        unknown = set(structured) - {'score_sync', 'mlp_growth', 'head_density', 'mlp_density'}
        if unknown:
            raise ValueError(f'PruneGrowHook: `structured` got unknown keys {sorted(unknown)}')
        self.structured_cfg = structured
        self.score_sync = _check_choice('structured.score_sync', structured.get('score_sync', 'all_reduce'),
                                        ('all_reduce', 'rank0'))
        self.mlp_growth = _check_choice('structured.mlp_growth', structured.get('mlp_growth', 'gradient'),
                                        ('gradient', 'random'))
        temperature(0, 1, tuple(tau))  # validates: two numbers > 0
        self.tau = tuple(float(v) for v in tau)
        self.seed = seed
        self.debug = debug
        self.controller: Optional[PruneGrowController] = None
        self._selectors = []
        self._loaded_state = None

    # ------------------------------------------------------------------ setup
    def before_run(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, (OptimWrapper, OptimWrapperDict)):
            return  # not training (tools/test.py): the optimizer wrapper is never built
        if not isinstance(wrapper, SViTEStepMixin):
            name = type(wrapper).__name__
            raise ValueError('PruneGrowHook needs `optim_wrapper.type` to be an SViTE optimizer wrapper '
                             "('mmsparse.SViTEOptimWrapper', 'mmsparse.AmpSViTEOptimWrapper' or "
                             f"'mmsparse.CPUAmpSViTEOptimWrapper'), got {name!r}: mmengine clears gradients "
                             'before after_train_iter, so only the wrapper can grow by gradient')

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        acc = int(getattr(runner.optim_wrapper, '_accumulative_counts', 1))
        t_total = int(math.ceil(runner.max_iters / acc))
        t_end = resolve_t_end(self.t_end, t_total)
        seed = self.seed if self.seed is not None else int(runner.seed or 0)
        resuming = self._loaded_state is not None and runner.iter > 0  # not a plain load_from
        # building the masker zeroes the weights under its fresh initial masks; a resume must
        # get the checkpoint's weights back before the checkpoint's masks are applied
        backup = [p.detach().clone() for p in model.parameters()] if resuming else None
        masker = None
        if self.mode == 'unstructured':
            masker = ParameterMasker(
                model,
                self.density,
                include=self.include,
                exclude=self.exclude,
                distribution=self.distribution,
                sampling=self.sampling,
                init_source=self.init_source,
                optimizer_state=self.optimizer_state,
                seed=seed)
            if not masker.params:
                raise ValueError(f'PruneGrowHook: `scope` include={self.include} exclude='
                                 f'{self.exclude} selects no weight of {type(model).__name__}')
            masker.broadcast(0)
        structured = self._structured_targets(model) if self.mode == 'structured' else []
        self.controller = PruneGrowController(
            masker,
            structured,
            update_interval=self.update_interval,
            t_end=t_end,
            t_total=t_total,
            death_rate=self.death_rate,
            min_death_rate=self.min_death_rate,
            decay=self.decay,
            algorithm1=self.algorithm1,
            growth=self.growth,
            mlp_growth=self.mlp_growth,
            score_sync=self.score_sync,
            optimizer_state=self.optimizer_state,
            seed=seed)
        if resuming:
            with torch.no_grad():
                for p, saved in zip(model.parameters(), backup):
                    p.copy_(saved)
            self.controller.load_state_dict(self._loaded_state)
        elif runner.iter > 0:
            runner.logger.warning('PruneGrowHook: resumed from a checkpoint without `svite` state; '
                                  'masks were re-initialised')
        self._loaded_state = None
        runner.optim_wrapper.attach_sparsity(self.controller)
        self._selectors = [
            m for m in model.modules()  # SViTE+ token selectors
            if hasattr(m, 'tau') and isinstance(getattr(m, 'scorer', None), nn.Module)
        ]
        self._mask_ema(runner)
        report = self.controller.density_report()
        runner.logger.info(
            f'PruneGrowHook: mode={self.mode}, {report["num_masks"]} masks, density '
            f'{report["mask_density"]:.4f}, T_total={t_total}, T_end={t_end}, '
            f'delta_t={self.update_interval}, decay={self.decay}, algorithm1={self.algorithm1}, '
            f'step {self.controller.t}')

    def _structured_targets(self, model):
        targets = [
            m for m in model.modules()
            if callable(getattr(m, 'structured_units', None)) and getattr(m, 'structured', False)
        ]
        if not targets:
            raise ValueError("PruneGrowHook(mode='structured') needs a backbone built with "
                             '`model.backbone.structured=dict(head_density=..., mlp_density=...)` '
                             "(e.g. type='mmsparse.SparseDeiT'); none found in "
                             f'{type(model).__name__}')
        for key, unit in (('head_density', 'heads_kept'), ('mlp_density', 'neurons_kept')):
            if key in self.structured_cfg:
                for t in targets:
                    n = t.head_masks()[0].numel() if unit == 'heads_kept' \
                        else t.neuron_masks()[0].numel()
                    if int(math.floor(n * self.structured_cfg[key])) != t.structured_cfg[unit]:
                        raise ValueError(f'PruneGrowHook: `structured.{key}` disagrees with '
                                         f'model.backbone.structured ({unit}='
                                         f'{t.structured_cfg[unit]}); set it on the backbone')
        return targets

    # ------------------------------------------------------------------ per iteration
    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.controller is None:
            return
        for selector in self._selectors:  # tau(t) of the coming step (t = steps done so far)
            selector.tau = temperature(self.controller.t, self.controller.t_total, self.tau)
        if self.controller.structured:
            self.controller.arm_head_capture()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.controller is None:
            return
        self._mask_ema(runner)
        stats = self.controller.pop_stats()
        if stats is None:
            return
        scalars = {
            f'svite/{k}': stats[k]
            for k in ('rate', 'density', 'swapped', 'pruned', 'grown', 'itop', 'grown_survival') if k in stats
        }
        for k, v in scalars.items():
            runner.message_hub.update_scalar(f'train/{k}', v)
        runner.visualizer.add_scalars(dict(scalars, svite_t=stats['t']), step=runner.iter + 1)
        survival = stats.get('grown_survival')
        runner.logger.info(
            f'PruneGrowHook update {stats["num_updates"]} at step {stats["t"]}: r={stats["rate"]:.5f}'
            f', swapped {stats["swapped"]}, pruned {stats["pruned"]} / grown {stats["grown"]}, '
            f'density {stats["density"]:.4f}, ITOP {stats["itop"]:.4f}' +
            (f', grown survival {survival:.4f}' if survival is not None else ''))
        runner.logger.debug('PruneGrowHook per-layer swaps (active): ' +
                            ', '.join(f'{n}={v["swapped"]} ({v["active"]}/{v["numel"]})'
                                      for n, v in stats['layers'].items()))
        if self.debug:
            path = osp.join(runner.work_dir, f'svite_updates_rank{get_rank()}.jsonl')
            with open(path, 'a') as f:
                f.write(json.dumps(dict(stats, iter=runner.iter + 1)) + '\n')

    # ------------------------------------------------------------------ EMA
    def _ema_modules(self, runner):
        for hook in runner.hooks:
            ema = getattr(hook, 'ema_model', None)
            if ema is not None and hasattr(ema, 'module'):
                yield ema.module

    @torch.no_grad()
    def _mask_ema(self, runner) -> None:
        """Keep every EMA copy as sparse as the model (the reference never masks its EMA copy)."""
        ctrl = self.controller
        for ema in self._ema_modules(runner):
            if ctrl.masker is not None and ctrl.masker.masks:
                params = dict(ema.named_parameters())
                for name, mask in ctrl.masker.masks.items():
                    if name in params:
                        params[name].masked_fill_(~mask.to(params[name].device), 0)
            if ctrl.structured:
                copies = [
                    m for m in ema.modules()
                    if callable(getattr(m, 'structured_units', None)) and getattr(m, 'structured', False)
                ]
                for src, dst in zip(ctrl.structured, copies):
                    dst.set_structured_masks(src.head_masks(), src.neuron_masks())

    # ------------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.controller is not None:
            checkpoint[CKPT_KEY] = self.controller.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # applied in before_train, once the masker exists (this runs before weight init is done
        # and before the train loop knows whether this is a resume)
        self._loaded_state = checkpoint.get(CKPT_KEY)

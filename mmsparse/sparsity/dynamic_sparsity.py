"""The SViTE / S2ViTE step-time state machine (docs/method/svite.md, 1.3, 1.5, 2.5). Torch only.

``PruneGrowController`` owns the schedule position t (optimizer steps done), the "update pending"
flag, the masks (an unstructured :class:`~mmsparse.sparsity.masks.ParameterMasker` and/or the
head/neuron masks of structured backbones) and the per-update statistics. An optimizer wrapper calls
:meth:`PruneGrowController.after_step` right after every optimizer step, *while the gradients
still exist*; it re-applies the masks and, on update steps, prunes and grows.

Structured targets are duck-typed (``SparseDeiT`` is one): they expose ``structured_units()``
(per block ``qkv, fc1, fc2, head_mask, neuron_mask, num_heads, head_dims``),
``head_score_captures()``, ``set_structured_masks(heads, neurons)``, ``apply_structured_masks()``
and ``structured_cfg['mask_qkv_bias']``.
"""
import hashlib
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .importance import head_row_mask, neuron_gradient_scores, neuron_l1_scores
from .masks import MOMENT_KEYS, ParameterMasker
from .prune_grow import DECAY_MODES, prune_rate, unit_prune_and_grow

__all__ = ['PruneGrowController', 'mask_digest', 'pack_mask', 'unpack_mask']


def _dist():
    import torch.distributed as dist
    return dist if dist.is_available() and dist.is_initialized() else None


def pack_mask(mask: torch.Tensor) -> dict:
    """bool tensor -> 1 bit per element (uint8 tensor) + shape, for compact checkpoints."""
    bits = np.packbits(mask.detach().cpu().numpy().astype(bool).ravel())
    return dict(bits=torch.from_numpy(bits), shape=tuple(mask.shape))


def unpack_mask(packed: dict) -> torch.Tensor:
    """Inverse of :func:`pack_mask` (CPU bool tensor)."""
    numel = math.prod(packed['shape'])
    flat = np.unpackbits(packed['bits'].numpy(), count=numel).astype(bool)
    return torch.from_numpy(flat).view(packed['shape'])


def mask_digest(masks: Dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names and bytes of bool masks (to compare ranks / runs cheaply)."""
    h = hashlib.sha256()
    for name in sorted(masks):
        h.update(name.encode())
        h.update(masks[name].detach().cpu().to(torch.uint8).contiguous().numpy().tobytes())
    return h.hexdigest()


class PruneGrowController:
    """Schedule + masks of one dynamic-sparse training run.

    Args:
        masker: unstructured masks (may hold no mask, e.g. density 1.0), or None.
        structured: structured backbones (see module docstring); empty for unstructured SViTE.
        update_interval: Delta T in optimizer steps (>= 1).
        t_end: T_end in steps; updates only at t < T_end.
        t_total: T_total, optimizer steps of the whole run (>= 1).
        death_rate: alpha in (0, 1). min_death_rate: r_min of ``cosine_reference``.
        decay: one of ``DECAY_MODES``.
        algorithm1: the paper's Algorithm 1 (update steps replace the optimizer step).
        growth: 'gradient' | 'random' (unstructured weights).
        mlp_growth: 'gradient' | 'random' (structured neurons; heads always grow by gradient).
        score_sync: 'all_reduce' (head scores summed over ranks) | 'rank0'.
        optimizer_state: 'keep' | 'mask' (structured moments; the masker handles its own).
        seed: seed of the controller's generator (structured random growth).
    """

    def __init__(self,
                 masker: Optional[ParameterMasker],
                 structured: Sequence = (),
                 update_interval: int = 1,
                 t_end: int = 1,
                 t_total: int = 1,
                 death_rate: float = 0.5,
                 min_death_rate: float = 0.005,
                 decay: str = 'cosine_reference',
                 algorithm1: bool = False,
                 growth: str = 'gradient',
                 mlp_growth: str = 'gradient',
                 score_sync: str = 'all_reduce',
                 optimizer_state: str = 'keep',
                 seed: int = 0):
        if decay not in DECAY_MODES:
            raise ValueError(f'`decay` must be one of {DECAY_MODES}, got {decay!r}')
        prune_rate(1, decay, death_rate, t_end, t_total, min_death_rate)  # validates the numbers
        if isinstance(update_interval, bool) or not isinstance(update_interval, int) or update_interval < 1:
            raise ValueError(f'`update_interval` must be an int >= 1, got {update_interval!r}')
        self.masker = masker
        self.structured = list(structured)
        self.update_interval = int(update_interval)
        self.t_end = int(t_end)
        self.t_total = int(t_total)
        self.death_rate = float(death_rate)
        self.min_death_rate = float(min_death_rate)
        self.decay = decay
        self.algorithm1 = bool(algorithm1)
        self.growth = growth
        self.mlp_growth = mlp_growth
        self.score_sync = score_sync
        self.optimizer_state = optimizer_state
        self.generator = torch.Generator().manual_seed(int(seed))
        self.t = 0
        self.pending = False
        self.num_updates = 0
        self.last_stats: Optional[dict] = None  # stats of the most recent update
        self._unread: Optional[dict] = None  # stats not yet taken by the hook
        self._grown: Dict[str, torch.Tensor] = {}  # positions / units grown at the last update
        self._ever: Dict[str, torch.Tensor] = {}  # union of all masks ever active (ITOP rate)
        self.update_grads_present: List[bool] = []  # per update: all gradients present? (a test checks it)
        for name, mask in self.all_masks().items():
            self._ever[name] = mask.clone()
        # density 1.0 or mode 'none': no mask, so never an update (docs/method/svite.md, 1.2)
        self.has_masks = bool(self._ever)

    # ------------------------------------------------------------------ schedule
    def rate(self, t: int) -> float:
        """r(t) of this run's decay."""
        return prune_rate(t, self.decay, self.death_rate, self.t_end, self.t_total, self.min_death_rate)

    def update_due(self, t: int) -> bool:
        """True if step ``t`` (from 1) must prune and grow: a Delta T multiple or a pending update,
        and t < T_end. Never at t = 0 (no gradient yet)."""
        if not self.has_masks or t < 1 or t >= self.t_end:
            return False
        return self.pending or t % self.update_interval == 0

    def skips_optimizer_step(self, t: int) -> bool:
        """Algorithm 1: an update step does not also update the weights."""
        return self.algorithm1 and self.update_due(t)

    def arm_head_capture(self) -> None:
        """Arm head-score capture iff the coming step (t + 1) is an update step
        (docs/method/svite.md, 1.5, step 1)."""
        armed = self.update_due(self.t + 1)
        for target in self.structured:
            for cap in target.head_score_captures():
                cap.armed = armed

    # ------------------------------------------------------------------ masks
    def all_masks(self) -> Dict[str, torch.Tensor]:
        """name -> bool mask of everything this run keeps sparse (live tensors, do not modify)."""
        masks = dict(self.masker.masks) if self.masker is not None else {}
        for j, target in enumerate(self.structured):
            for i, unit in enumerate(target.structured_units()):
                masks[f'structured.{j}.{i}.heads'] = unit['head_mask']
                masks[f'structured.{j}.{i}.neurons'] = unit['neuron_mask']
        return masks

    def digest(self) -> str:
        return mask_digest(self.all_masks())

    @torch.no_grad()
    def apply(self, optimizer: Optional[torch.optim.Optimizer] = None) -> None:
        """w <- w * m for every mask (and the moments with ``optimizer_state='mask'``)."""
        if self.masker is not None:
            self.masker.apply(optimizer)
        for target in self.structured:
            target.apply_structured_masks()
        if optimizer is not None and self.optimizer_state == 'mask' and self.structured:
            for p, mask in self._structured_param_masks():
                state = optimizer.state.get(p, {})
                for key in MOMENT_KEYS:
                    buf = state.get(key)
                    if torch.is_tensor(buf) and buf.shape == mask.shape:
                        buf.masked_fill_(~mask, 0)

    def _structured_param_masks(self):
        """(parameter, bool element mask) pairs implied by the head / neuron masks."""
        for target in self.structured:
            mask_bias = target.structured_cfg['mask_qkv_bias']
            for u in target.structured_units():
                rows = head_row_mask(u['head_mask'], u['head_dims']).to(u['qkv'].weight.device)
                yield u['qkv'].weight, rows[:, None].expand_as(u['qkv'].weight)
                if mask_bias and u['qkv'].bias is not None:
                    yield u['qkv'].bias, rows
                keep = u['neuron_mask'].to(u['fc1'].weight.device)
                yield u['fc1'].weight, keep[:, None].expand_as(u['fc1'].weight)
                yield u['fc2'].weight, keep[None, :].expand_as(u['fc2'].weight)

    # ------------------------------------------------------------------ the step
    def after_step(self, optimizer: Optional[torch.optim.Optimizer] = None) -> Optional[dict]:
        """Call once per optimizer step (taken or skipped), before ``zero_grad``.

        t <- t + 1; re-apply masks; on an update step prune and grow from the current ``.grad``
        (unless a gradient is non-finite: then the update waits for the next step).

        Returns:
            the update's statistics, or None if no update happened at this step.
        """
        self.t += 1
        self.apply(optimizer)
        stats = None
        if self.update_due(self.t):
            if not self._grads_finite():
                self.pending = True
            else:
                self.pending = False
                stats = self._update(self.rate(self.t))
                self.apply(optimizer)
        for target in self.structured:  # head scores never outlive a step (docs/method/svite.md, 1.5, 4d)
            for cap in target.head_score_captures():
                cap.reset()
        if stats is not None:
            self.last_stats = stats
            self._unread = stats
        return stats

    def pop_stats(self) -> Optional[dict]:
        """The stats of an update since the last call (for the hook's logging), else None."""
        stats, self._unread = self._unread, None
        return stats

    def _grads_finite(self) -> bool:
        ok = self.masker is None or not self.masker.masks or self.masker.grads_finite()
        for target in self.structured:
            for u in target.structured_units():
                for p in (u['fc1'].weight, u['fc2'].weight):
                    ok = ok and p.grad is not None and bool(torch.isfinite(p.grad).all())
            for cap in target.head_score_captures():
                for s in (cap.taylor_sum, cap.grad_sum):
                    ok = ok and (s is None or bool(torch.isfinite(s).all()))
        dist = _dist()
        if dist is not None:  # head scores are per rank: every rank must defer together
            device = next(iter(self._ever.values())).device  # NCCL needs device tensors
            flag = torch.tensor([1.0 if ok else 0.0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            ok = bool(flag.item() > 0)
        return ok

    @torch.no_grad()
    def _update(self, rate: float) -> dict:
        old = {k: m.clone() for k, m in self.all_masks().items()}
        self.update_grads_present.append(self._grads_present())
        swaps: Dict[str, int] = {}
        local = {}  # this rank's own decision, before rank 0's is broadcast (a DDP check)
        if self.masker is not None and self.masker.masks:
            swaps.update(self.masker.prune_and_grow(rate, self.growth))
            local.update(self.masker.masks)
            self.masker.broadcast(0)
        for j, target in enumerate(self.structured):
            swaps.update(self._update_structured(j, target, rate, local))
        self.num_updates += 1
        stats = self._stats(rate, old, swaps)
        stats['local_digest'] = mask_digest(local)
        return stats

    def _grads_present(self) -> bool:
        params = [p for _, p, _ in self.masker.items()] if self.masker is not None else []
        for target in self.structured:
            for u in target.structured_units():
                params += [u['fc1'].weight, u['fc2'].weight]
        return bool(params) and all(p.grad is not None for p in params)

    def _head_scores(self, target):
        """Per block (S, R) of one target, summed over ranks with ``score_sync='all_reduce'``."""
        caps = target.head_score_captures()
        if any(c.count == 0 for c in caps):
            raise RuntimeError('structured update without captured head scores: call '
                               'arm_head_capture() before the forward of an update step')
        sums = torch.stack([torch.stack([c.taylor_sum, c.grad_sum]) for c in caps])  # (L, 2, H)
        count = torch.tensor([float(caps[0].count)], dtype=sums.dtype, device=sums.device)
        dist = _dist()
        if dist is not None and self.score_sync == 'all_reduce':
            dist.all_reduce(sums)
            dist.all_reduce(count)
        scores = sums / count
        return [(scores[i, 0], scores[i, 1]) for i in range(len(caps))]

    def _update_structured(self, j: int, target, rate: float, local: dict) -> Dict[str, int]:
        units = target.structured_units()
        head_scores = self._head_scores(target)
        heads, neurons, swaps = [], [], {}
        for i, (u, (s, r)) in enumerate(zip(units, head_scores)):
            hm = u['head_mask'].cpu()
            new_h, kh = unit_prune_and_grow(hm, s.cpu(), r.cpu(), rate, 'gradient', self.generator)
            nm = u['neuron_mask'].cpu()
            fc1, fc2 = u['fc1'].weight, u['fc2'].weight
            m_score = neuron_l1_scores(fc1, fc2).cpu()
            g_score = neuron_gradient_scores(fc1.grad, fc2.grad).cpu()
            new_n, kn = unit_prune_and_grow(nm, m_score, g_score, rate, self.mlp_growth, self.generator)
            heads.append(new_h)
            neurons.append(new_n)
            swaps[f'structured.{j}.{i}.heads'] = kh
            swaps[f'structured.{j}.{i}.neurons'] = kn
            local[f'structured.{j}.{i}.heads'] = new_h.clone()
            local[f'structured.{j}.{i}.neurons'] = new_n.clone()
        device = units[0]['head_mask'].device
        heads = [h.to(device) for h in heads]
        neurons = [n.to(device) for n in neurons]
        dist = _dist()
        if dist is not None:  # rank 0 decides (docs/method/svite.md, 2.5, step 5)
            for m in heads + neurons:
                buf = m.to(torch.uint8)  # gloo has no bool broadcast
                dist.broadcast(buf, src=0)
                m.copy_(buf.bool())
        target.set_structured_masks(heads, neurons)
        return swaps

    def _stats(self, rate: float, old: Dict[str, torch.Tensor], swaps: Dict[str, int]) -> dict:
        """Per-layer and total counts of one update, plus the exploration signals."""
        new = self.all_masks()
        layers, survived, prev_grown = {}, 0, 0
        for name, mask in new.items():
            before = old[name]
            grown = mask & ~before
            if name in self._grown:
                prev_grown += int(self._grown[name].sum())
                survived += int((self._grown[name] & mask).sum())
            self._grown[name] = grown
            self._ever[name] = self._ever.get(name, before) | mask
            layers[name] = dict(
                active=int(mask.sum()),
                numel=mask.numel(),
                swapped=int(swaps.get(name, 0)),
                pruned=int((before & ~mask).sum()),
                grown=int(grown.sum()))
        total = sum(v['numel'] for v in layers.values())
        stats = dict(
            t=self.t,
            rate=rate,
            num_updates=self.num_updates,
            layers=layers,
            density=(sum(v['active'] for v in layers.values()) / total) if total else 1.0,
            swapped=sum(v['swapped'] for v in layers.values()),
            pruned=sum(v['pruned'] for v in layers.values()),
            grown=sum(v['grown'] for v in layers.values()),
            itop=(sum(int(m.sum()) for m in self._ever.values()) / total) if total else 1.0,
            digest=mask_digest(new))
        if prev_grown:
            stats['grown_survival'] = survived / prev_grown
        return stats

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        """Everything a resume needs: schedule position, masks, RNG streams, exploration sets."""
        return dict(
            t=self.t,
            pending=self.pending,
            num_updates=self.num_updates,
            t_total=self.t_total,
            t_end=self.t_end,
            update_interval=self.update_interval,
            decay=self.decay,
            generator=self.generator.get_state(),
            masker=self.masker.state_dict() if self.masker is not None else None,
            structured=[([m.cpu().clone()
                          for m in t.head_masks()], [m.cpu().clone() for m in t.neuron_masks()])
                        for t in self.structured],
            # exploration sets only feed the logs: 1 bit per weight keeps checkpoints small
            grown={
                k: pack_mask(v)
                for k, v in self._grown.items()
            },
            ever={
                k: pack_mask(v)
                for k, v in self._ever.items()
            },
            last_stats=self.last_stats)

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a different T_total (world size, max_iters or gradient
        accumulation changed) would silently change the schedule, so it is an error."""
        if int(state['t_total']) != self.t_total:
            raise ValueError(f'PruneGrowHook: the checkpoint was trained with T_total={state["t_total"]} '
                             f'optimizer steps but this run has T_total={self.t_total} (train_cfg.max_iters, '
                             'the number of processes or optim_wrapper.accumulative_counts changed); resume '
                             'with the same settings')
        for key in ('t_end', 'update_interval', 'decay'):
            if state.get(key, getattr(self, key)) != getattr(self, key):
                raise ValueError(f'PruneGrowHook: checkpoint {key}={state[key]!r} differs from '
                                 f'the config ({getattr(self, key)!r})')
        if (state['masker'] is None) != (self.masker is None):
            raise ValueError('PruneGrowHook: the checkpoint and the config disagree on `mode`')
        if self.masker is not None:
            self.masker.load_state_dict(state['masker'])
        if len(state['structured']) != len(self.structured):
            raise ValueError('PruneGrowHook: the checkpoint has structured masks for '
                             f'{len(state["structured"])} backbones, the model has '
                             f'{len(self.structured)}')
        for target, (heads, neurons) in zip(self.structured, state['structured']):
            target.set_structured_masks(heads, neurons)
        self.t = int(state['t'])
        self.pending = bool(state['pending'])
        self.num_updates = int(state['num_updates'])
        self.generator.set_state(state['generator'])
        masks = self.all_masks()
        self._grown = {k: unpack_mask(v).to(masks[k].device) for k, v in state['grown'].items()}
        self._ever = {k: unpack_mask(v).to(masks[k].device) for k, v in state['ever'].items()}
        self.last_stats = state.get('last_stats')

    # ------------------------------------------------------------------ report
    def density_report(self) -> dict:
        """Overall kept fraction of the masked tensors and the count of masks."""
        masks = self.all_masks()
        total = sum(m.numel() for m in masks.values())
        kept = sum(int(m.sum()) for m in masks.values())
        out = dict(num_masks=len(masks), mask_density=kept / total if total else 1.0)
        if self.masker is not None:
            out['weight_density'] = self.masker.global_density()
        return out

"""Unstructured weight masks on any ``nn.Module`` (docs/method/svite.md, 1.1, 1.2, 1.4).

``ParameterMasker`` picks parameters by name regexes and module types, gives each an ERK (or uniform)
density, draws one bool mask per tensor from a seeded generator and keeps ``w[~m] == 0`` exactly
whenever :meth:`ParameterMasker.apply` runs (call it after every optimizer step: decoupled weight
decay and Adam moments would otherwise revive masked entries). It knows nothing about schedules; a
training hook asks it for ``(name, param, mask)`` triples and hands back new masks.
"""
import re
from typing import Dict, Iterator, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn

from .erk import check_density, layer_densities
from .prune_grow import prune_and_grow, select_largest

__all__ = ['ParameterMasker', 'strip_wrapper_prefix', 'sample_mask', 'sample_unit_mask']

#: never masked, whatever the include patterns say: the token-selector scorer (docs/method/svite.md, 1.1)
DEFAULT_EXCLUDE = (r'(^|\.)token_selector\.', )
#: optimizer state entries shaped like the parameter that ``optimizer_state='mask'`` zeroes
MOMENT_KEYS = ('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'momentum_buffer')
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def strip_wrapper_prefix(name: str) -> str:
    """Drop DDP / EMA wrapper prefixes (``module.``) so masks are keyed like the bare model."""
    while name.startswith('module.'):
        name = name[len('module.'):]
    return name


def sample_mask(numel: int,
                density: float,
                sampling: str = 'exact',
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Flat bool mask with ``round(density * numel)`` (exact) or ~density (bernoulli) True entries."""
    if sampling == 'exact':
        n_keep = int(round(density * numel))
        keep = torch.randperm(numel, generator=generator)[:n_keep]
        mask = torch.zeros(numel, dtype=torch.bool)
        mask[keep] = True
        return mask
    if sampling == 'bernoulli':
        return torch.rand(numel, generator=generator) < density
    raise ValueError(f"`sampling` must be 'exact' or 'bernoulli', got {sampling!r}")


def sample_unit_mask(num_units: int,
                     num_keep: int,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(num_units,) bool with ``num_keep`` True entries chosen uniformly (heads / MLP neurons)."""
    if not 1 <= num_keep <= num_units:
        raise ValueError(f'units to keep must be in [1, {num_units}], got {num_keep}')
    mask = torch.zeros(num_units, dtype=torch.bool)
    mask[torch.randperm(num_units, generator=generator)[:num_keep]] = True
    return mask


class ParameterMasker:
    """One bool mask per selected weight tensor, ERK-initialised, exactly applied.

    Args:
        model: any module (a DDP wrapper is fine: names lose their ``module.`` prefix).
        density: global target density d in (0, 1]; 1.0 creates no masks at all.
        include: regexes (``re.search``) on parameter names; a parameter must match one.
            Default: everything.
        exclude: regexes; a match removes the parameter. Always extended by ``DEFAULT_EXCLUDE``.
        module_types: if given, only parameters owned by instances of these types.
        min_ndim: only tensors with at least this many dims (2: linear and conv weights, so biases
            and norm affines are never masked).
        distribution: 'erk' or 'uniform' per-layer densities.
        sampling: 'exact' (round(p N) positions, default) or 'bernoulli' (reference code).
        init_source: 'random' (default) or 'magnitude' (keep the largest |w|, for a pretrained start).
        optimizer_state: 'keep' (default, moments untouched) or 'mask' (moments zeroed by ``apply``).
        seed: seed of the masker's own ``torch.Generator`` (same on every rank).

    Masks are built at construction and the weights are masked immediately.
    """

    def __init__(self,
                 model: nn.Module,
                 density: float,
                 include: Optional[Sequence[str]] = None,
                 exclude: Optional[Sequence[str]] = None,
                 module_types: Optional[Sequence[Type[nn.Module]]] = None,
                 min_ndim: int = 2,
                 distribution: str = 'erk',
                 sampling: str = 'exact',
                 init_source: str = 'random',
                 optimizer_state: str = 'keep',
                 seed: int = 0):
        self.density = check_density(density)
        if sampling not in ('exact', 'bernoulli'):
            raise ValueError(f"`sampling` must be 'exact' or 'bernoulli', got {sampling!r}")
        if init_source not in ('random', 'magnitude'):
            raise ValueError(f"`init_source` must be 'random' or 'magnitude', got {init_source!r}")
        if optimizer_state not in ('keep', 'mask'):
            raise ValueError(f"`optimizer_state` must be 'keep' or 'mask', got {optimizer_state!r}")
        self.sampling = sampling
        self.init_source = init_source
        self.optimizer_state = optimizer_state
        self.distribution = distribution
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.params: Dict[str, nn.Parameter] = self._select(model, include, exclude, module_types, min_ndim)
        shapes = {k: tuple(p.shape) for k, p in self.params.items()}
        # d = 1.0 means no masks at all (docs/method/svite.md, 1.2): keep the selection for reports only
        self.densities = layer_densities(shapes, self.density, distribution) \
            if self.density < 1.0 else {k: 1.0 for k in shapes}
        self.masks: Dict[str, torch.Tensor] = {}
        for name, p in self.params.items():
            dens = self.densities[name]
            if dens >= 1.0:
                continue  # dense layers carry no mask and are skipped by every update
            if init_source == 'magnitude':
                n_keep = int(round(dens * p.numel()))
                flat = torch.zeros(p.numel(), dtype=torch.bool)
                keep = select_largest(p.detach().abs().cpu(), torch.ones_like(flat), n_keep)
                flat[keep] = True
            else:
                flat = sample_mask(p.numel(), dens, sampling, self.generator)
            self.masks[name] = flat.view(p.shape).to(p.device)
        self.apply()

    @staticmethod
    def _select(model, include, exclude, module_types, min_ndim) -> Dict[str, nn.Parameter]:
        inc = [re.compile(p) for p in (include or [r'.*'])]
        exc = [re.compile(p) for p in list(exclude or []) + list(DEFAULT_EXCLUDE)]
        selected = {}
        for mod_name, module in model.named_modules():
            if isinstance(module, _NORM_TYPES):
                continue
            if module_types is not None and not isinstance(module, tuple(module_types)):
                continue
            for p_name, p in module.named_parameters(recurse=False):
                name = strip_wrapper_prefix(f'{mod_name}.{p_name}' if mod_name else p_name)
                if p.dim() < min_ndim or name in selected:
                    continue
                # only weights: cls_token / pos_embed are >= 2-D but never masked (docs/method/svite.md, 1.1)
                if p_name != 'weight':
                    continue
                if any(r.search(name) for r in inc) and not any(r.search(name) for r in exc):
                    selected[name] = p
        return selected

    # ------------------------------------------------------------------ access
    def items(self) -> Iterator[Tuple[str, nn.Parameter, torch.Tensor]]:
        """(name, parameter, mask) for every masked tensor, in model order."""
        for name, mask in self.masks.items():
            yield name, self.params[name], mask

    def set_mask(self, name: str, mask: torch.Tensor) -> None:
        """Replace one mask (same shape, bool) and zero the newly masked weights."""
        old = self.masks[name]
        if mask.dtype != torch.bool or mask.shape != old.shape:
            raise ValueError(f'mask for {name} must be bool {tuple(old.shape)}, '
                             f'got {mask.dtype} {tuple(mask.shape)}')
        self.masks[name] = mask.to(old.device)
        with torch.no_grad():
            self.params[name].masked_fill_(~self.masks[name], 0)

    # ------------------------------------------------------------------ update
    def grads_finite(self) -> bool:
        """False if any masked tensor's gradient is missing or non-finite (update must wait)."""
        return all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for _, p, _ in self.items())

    @torch.no_grad()
    def prune_and_grow(self, rate: float, growth: str = 'gradient') -> Dict[str, int]:
        """One SViTE update of every masked tensor from its current weight and ``.grad``.

        Per tensor: prune k = ceil(rate * nnz) smallest |w|, grow k largest |grad| among the
        post-prune inactive (docs/method/svite.md, 1.4). Newly grown weights are set to exactly 0; weights
        active before and after keep their values bit for bit. Call after the optimizer step and
        :meth:`apply`, before ``zero_grad``.

        Returns:
            name -> k (pruned == grown count).
        """
        swaps = {}
        for name, p, mask in list(self.items()):
            new, k = prune_and_grow(p, p.grad, mask, rate, growth, self.generator)
            p.masked_fill_(new & ~mask, 0)  # grown: start at 0 (docs/method/svite.md, 1.4)
            p.masked_fill_(~new, 0)
            self.masks[name] = new
            swaps[name] = k
        return swaps

    @torch.no_grad()
    def broadcast(self, src: int = 0) -> None:
        """Make every rank's masks (and the weights they zero) equal to rank ``src``'s.

        No-op outside an initialised ``torch.distributed`` group. bool tensors travel as uint8
        (gloo has no bool broadcast).
        """
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()):
            return
        for name, p, mask in list(self.items()):
            buf = mask.to(torch.uint8)
            dist.broadcast(buf, src=src)
            self.masks[name] = buf.bool()
            p.masked_fill_(~self.masks[name], 0)

    # ------------------------------------------------------------------ apply
    @torch.no_grad()
    def apply(self, optimizer: Optional[torch.optim.Optimizer] = None) -> None:
        """Zero every masked weight (exactly), and with ``optimizer_state='mask'`` its moments.

        masked_fill, not multiplication: the masked entries become exactly 0 even if the step made
        them non-finite, and active entries are left bit-identical.
        """
        for name, p, mask in self.items():
            p.masked_fill_(~mask, 0)
        if optimizer is not None and self.optimizer_state == 'mask':
            self.apply_optimizer_state(optimizer)

    @torch.no_grad()
    def apply_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero ``exp_avg`` / ``exp_avg_sq`` / ``momentum_buffer`` ... at masked positions."""
        for name, p, mask in self.items():
            state = optimizer.state.get(p, {})
            for key in MOMENT_KEYS:
                buf = state.get(key)
                if torch.is_tensor(buf) and buf.shape == mask.shape:
                    buf.masked_fill_(~mask, 0)

    # ------------------------------------------------------------------ report
    def layer_density(self) -> Dict[str, float]:
        """name -> realised kept fraction, for every selected tensor (1.0 for dense ones)."""
        return {
            name: (float(self.masks[name].sum()) / p.numel() if name in self.masks else 1.0)
            for name, p in self.params.items()
        }

    def global_density(self) -> float:
        """Kept elements / all elements over every selected tensor (dense ones count as kept)."""
        total = sum(p.numel() for p in self.params.values())
        kept = sum(int(self.masks[n].sum()) if n in self.masks else p.numel() for n, p in self.params.items())
        return kept / total if total else 1.0

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        """Masks (CPU bool), densities and generator state; goes under ``checkpoint['svite']``."""
        return dict(
            density=self.density,
            densities=dict(self.densities),
            masks={
                k: m.detach().cpu().clone()
                for k, m in self.masks.items()
            },
            generator=self.generator.get_state(),
            seed=self.seed)

    def load_state_dict(self, state: dict) -> None:
        """Restore masks and RNG; names and shapes must match this masker's selection."""
        masks = state['masks']
        if set(masks) != set(self.masks):
            raise ValueError('mask names in the checkpoint differ from the selected parameters: '
                             f'missing {sorted(set(self.masks) - set(masks))}, '
                             f'unexpected {sorted(set(masks) - set(self.masks))}')
        for name, mask in masks.items():
            self.set_mask(name, mask.bool())
        if 'generator' in state:
            self.generator.set_state(state['generator'])
        self.densities.update(state.get('densities', {}))

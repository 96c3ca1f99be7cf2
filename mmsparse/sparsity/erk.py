"""Per-layer initial densities for unstructured sparse training (docs/method/svite.md, 1.2).

Erdős–Rényi-Kernel (ERK): a layer of shape (n_1, ..., n_k) with N = prod(n_i) elements gets the raw
score pi = sum(n_i) / prod(n_i) (kernel dimensions included) and the density p = eps * pi, where the
single scale eps makes the kept weights add up to ``density * sum(N)``. Layers whose density would
exceed 1 are made dense (p = 1), all layers sharing the current largest raw score at once, and eps is
solved again over the rest until every density fits.
"""
import math
from typing import Dict, Mapping, Sequence

__all__ = ['check_density', 'erk_densities', 'uniform_densities', 'layer_densities']


def check_density(density: float, field: str = 'density') -> float:
    """Return ``float(density)`` or raise ``ValueError`` naming ``field`` if it is not in (0, 1]."""
    if isinstance(density, bool) or not isinstance(density, (int, float)) \
            or not 0.0 < float(density) <= 1.0 or math.isnan(float(density)):
        raise ValueError(f'`{field}` must be a number in (0, 1], got {density!r}')
    return float(density)


def _numel(shape: Sequence[int]) -> int:
    return int(math.prod(int(n) for n in shape))


def erk_densities(shapes: Mapping[str, Sequence[int]],
                  density: float,
                  power_scale: float = 1.0) -> Dict[str, float]:
    """ERK densities for a target global density.

    Args:
        shapes: parameter name -> tensor shape of every masked layer, e.g.
            ``{'patch_embed.projection.weight': (192, 3, 16, 16), ...}``.
        density: target kept fraction over all listed elements, in (0, 1].
        power_scale: exponent on the raw score (``erk_power_scale``; 1 in SViTE).

    Returns:
        name -> density in (0, 1]; 1.0 exactly for layers in the dense set. The kept counts
        ``sum(p_l * N_l)`` equal ``density * sum(N_l)`` up to float rounding.
    """
    density = check_density(density)
    if not shapes:
        return {}
    numel = {k: _numel(s) for k, s in shapes.items()}
    raw = {k: (sum(int(n) for n in s) / numel[k])**power_scale for k, s in shapes.items()}
    if density == 1.0:
        return {k: 1.0 for k in shapes}
    dense = set()
    while True:
        sparse = [k for k in shapes if k not in dense]
        if not sparse:  # only reachable through rounding at density ~1: everything dense
            return {k: 1.0 for k in shapes}
        kept_budget = density * sum(numel[k] for k in sparse) \
            - (1.0 - density) * sum(numel[k] for k in dense)
        eps = kept_budget / sum(raw[k] * numel[k] for k in sparse)
        top = max(raw[k] for k in sparse)
        if eps * top <= 1.0:
            break
        # all layers sharing the largest raw score turn dense together (docs/method/svite.md, 1.2)
        dense.update(k for k in sparse if raw[k] == top)
    return {k: 1.0 if k in dense else eps * raw[k] for k in shapes}


def uniform_densities(shapes: Mapping[str, Sequence[int]], density: float) -> Dict[str, float]:
    """Every layer at the same density (the ``uniform`` option)."""
    density = check_density(density)
    return {k: density for k in shapes}


def layer_densities(shapes: Mapping[str, Sequence[int]],
                    density: float,
                    distribution: str = 'erk') -> Dict[str, float]:
    """Dispatch on ``distribution`` in {'erk', 'uniform'}."""
    if distribution == 'erk':
        return erk_densities(shapes, density)
    if distribution == 'uniform':
        return uniform_densities(shapes, density)
    raise ValueError(f"`distribution` must be 'erk' or 'uniform', got {distribution!r}")

"""SparseViT's layer-wise window-pruning search space and SAA sampler (docs/method/sparsevit.md, 3.1-3.2).

A configuration is a dict of **genes**, one per block pair, named ``s{stage}`` for a stage with one
pair and ``s{stage}_{j}`` (j = 1, 2, ...) otherwise; Swin-T (depths 2, 2, 6, 2) has
``s0, s1, s2_1, s2_2, s2_3, s3``. Gene values are taken from a grid (``{0, 0.1, ..., 0.8}``), and the
genes of a stage are non-decreasing because a later block can only keep a subset of the windows an
earlier same-parity block kept (docs/method/sparsevit.md, 2.4).

Randomness comes from an explicit ``numpy.random.Generator`` (its ``bit_generator.state`` is a
plain dict, so it can be pickled or written as JSON and restored exactly).
"""
import json
from math import comb

import numpy as np

DEFAULT_CHOICES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)

# Tolerance for matching a float ratio to a grid value (configs spell 0.3 as 0.3, 0.30000000000000004...)
_GRID_ATOL = 1e-6
# Attempts for conditioning a stage sample on fixed genes (only reached with pathological fixings)
_MAX_FIXED_REDRAWS = 100000


def iteration_rng(seed, iteration):
    """A generator determined by ``(seed, iteration)`` only.

    Used by sparsity-aware adaptation so that every rank draws the same configuration at iteration
    ``iteration`` without communication, and a resumed run reproduces the sequence
    (docs/method/sparsevit.md, 3.1).
    """
    return np.random.default_rng([int(seed), int(iteration)])


class SwinRatioSpace:
    """Per-pair window-pruning ratios of a Swin backbone.

    Args:
        depths (Sequence[int]): blocks per stage; each must be even (a gene covers a block pair).
            Default Swin-T ``(2, 2, 6, 2)``.
        choices (Sequence[float]): the ratio grid, strictly increasing, each in [0, 1).
        fixed (dict | None): genes that never change, ``{name: value}``; ``name`` is a gene name
            (``'s2_1'``) or a stage name (``'s1'`` for a multi-pair stage fixes all its genes).
            Fixed values must be on the grid and must leave the stage satisfiable (non-decreasing).
    """

    def __init__(self, depths=(2, 2, 6, 2), choices=DEFAULT_CHOICES, fixed=None):
        depths = tuple(int(d) for d in depths)
        if not depths or any(d <= 0 or d % 2 for d in depths):
            raise ValueError(f'depths must be positive even block counts (one gene per block pair), '
                             f'got {depths}')
        choices = tuple(float(c) for c in choices)
        if not choices or any(not 0.0 <= c < 1.0
                              for c in choices) or any(b <= a for a, b in zip(choices, choices[1:])):
            raise ValueError(f'choices must be strictly increasing ratios in [0, 1), got {choices}')
        self.depths = depths
        self.choices = choices
        # gene_names[s] = names of stage s's genes, in block order
        self.gene_names = [[f's{s}'] if d == 2 else [f's{s}_{j + 1}' for j in range(d // 2)]
                           for s, d in enumerate(depths)]
        self.names = [n for stage in self.gene_names for n in stage]
        self.fixed = self._check_fixed(fixed or {})

    # ------------------------------------------------------------------ description
    def _check_fixed(self, fixed):
        out = {}
        for name, value in fixed.items():
            stage = self._stage_of_name(name)
            targets = [name] if name in self.names else self.gene_names[stage]
            idx = self._grid_index(value, f'fixed[{name!r}]')
            for t in targets:
                out[t] = idx
        # a fixed stage must be non-decreasing among its fixed genes, otherwise nothing is feasible
        for s, names in enumerate(self.gene_names):
            fixed_idx = [out[n] for n in names if n in out]
            if any(b < a for a, b in zip(fixed_idx, fixed_idx[1:])):
                raise ValueError(f'fixed genes of stage {s} must be non-decreasing, got '
                                 f'{[(n, self.choices[out[n]]) for n in names if n in out]}')
        return out

    def _stage_of_name(self, name):
        for s, names in enumerate(self.gene_names):
            if name in names or name == f's{s}':
                return s
        raise ValueError(f'fixed: unknown gene or stage {name!r}; allowed: {self.names} or '
                         f'{[f"s{s}" for s in range(len(self.depths))]}')

    def _grid_index(self, value, field):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f'{field} must be a number on the grid {list(self.choices)}, got {value!r}')
        for i, c in enumerate(self.choices):
            if abs(v - c) <= _GRID_ATOL:
                return i
        raise ValueError(f'{field} = {value!r} is off the ratio grid {list(self.choices)}')

    def describe(self):
        """JSON-safe description; equal descriptions mean equal spaces (used to check resumes)."""
        return dict(
            depths=list(self.depths),
            choices=list(self.choices),
            fixed={
                n: self.choices[i]
                for n, i in sorted(self.fixed.items())
            })

    def size(self):
        """Number of configurations: per stage, non-decreasing sequences on the grid that agree with
        the fixed genes (Swin-T, 9 values: 9**3 * C(11, 3) = 120,285)."""
        total = 1
        for names in self.gene_names:
            total *= self._count_stage(names)
        return total

    def _count_stage(self, names):
        n = len(self.choices)
        if not any(name in self.fixed for name in names):
            return comb(n + len(names) - 1, len(names))  # multisets of size len(names)
        # dynamic programme over positions: ways[v] = sequences so far ending at grid index v
        ways = [1] * n
        for pos, name in enumerate(names):
            if pos > 0:
                ways = list(np.cumsum(ways))  # any previous value <= v
            if name in self.fixed:
                ways = [w if v == self.fixed[name] else 0 for v, w in enumerate(ways)]
        return int(sum(ways))

    # ------------------------------------------------------------------ conversions
    def canonical(self, genes, field='genes'):
        """Validated copy of ``genes`` with every value replaced by its exact grid value."""
        self.validate(genes, field=field)
        return {n: self.choices[self._grid_index(genes[n], n)] for n in self.names}

    def key(self, genes):
        """Canonical hash of a configuration: sorted-key JSON of its genes (docs/method/sparsevit.md, 3.2)."""
        return json.dumps(self.canonical(genes), sort_keys=True)

    def to_block_ratios(self, genes):
        """Genes -> per-stage per-block lists, e.g. Swin-T ``[[s0, s0], [s1, s1],
        [s2_1, s2_1, s2_2, s2_2, s2_3, s2_3], [s3, s3]]``."""
        genes = self.canonical(genes)
        return [[genes[n] for n in names for _ in range(2)] for names in self.gene_names]

    def from_block_ratios(self, block_ratios, field='pruning_ratios'):
        """Per-stage per-block lists -> genes. Raises ValueError naming the offending entry for a
        wrong stage count or length, an off-grid value, unequal ratios within a pair, decreasing
        genes or a change to a fixed gene."""
        if len(block_ratios) != len(self.depths):
            raise ValueError(f'{field} must have {len(self.depths)} stage lists, got {len(block_ratios)}')
        genes = {}
        for s, (names, ratios) in enumerate(zip(self.gene_names, block_ratios)):
            if len(ratios) != self.depths[s]:
                raise ValueError(f'{field}[{s}] must have {self.depths[s]} ratios (the stage depth), '
                                 f'got {len(ratios)}')
            for j, name in enumerate(names):
                a = self._grid_index(ratios[2 * j], f'{field}[{s}][{2 * j}]')
                b = self._grid_index(ratios[2 * j + 1], f'{field}[{s}][{2 * j + 1}]')
                if a != b:
                    raise ValueError(f'{field}[{s}][{2 * j}:{2 * j + 2}] = {list(ratios[2 * j:2 * j + 2])}: '
                                     f'the two blocks of a pair must share one ratio (gene {name})')
                genes[name] = self.choices[a]
        self.validate(genes, field=field)
        return genes

    def validate(self, genes, field='genes'):
        """Raise ValueError unless ``genes`` names exactly this space's genes, is on the grid,
        non-decreasing within each stage and agrees with the fixed genes."""
        if set(genes) != set(self.names):
            raise ValueError(f'{field} must have exactly the genes {self.names}, got {sorted(genes)}')
        for s, names in enumerate(self.gene_names):
            idx = [self._grid_index(genes[n], f'{field}[{n!r}]') for n in names]
            for (n0, i0), (n1, i1) in zip(zip(names, idx), zip(names[1:], idx[1:])):
                if i1 < i0:
                    raise ValueError(f'{field}: stage {s} genes must be non-decreasing, got '
                                     f'{n0}={genes[n0]} > {n1}={genes[n1]}')
            for n, i in zip(names, idx):
                if n in self.fixed and i != self.fixed[n]:
                    raise ValueError(f'{field}[{n!r}] = {genes[n]} but the space fixes it to '
                                     f'{self.choices[self.fixed[n]]}')

    def uniform(self, value):
        """All genes equal to ``value`` (e.g. dense 0.0, or 0.5), fixed genes kept."""
        idx = self._grid_index(value, 'value')
        return {n: self.choices[self.fixed.get(n, idx)] for n in self.names}

    # ------------------------------------------------------------------ operators
    def _draw_stage(self, names, rng):
        """Draw len(names) grid indices i.i.d. uniform and sort them ascending (the SAA sampler,
        docs/method/sparsevit.md, 3.1). Fixed genes condition this law by rejection (redraw the stage
        until the sorted draw agrees with them)."""
        n = len(self.choices)
        for _ in range(_MAX_FIXED_REDRAWS):
            idx = np.sort(rng.integers(0, n, size=len(names)))
            if all(idx[p] == self.fixed[m] for p, m in enumerate(names) if m in self.fixed):
                return [int(i) for i in idx]
        raise RuntimeError(f'could not draw stage genes {names} consistent with fixed '
                           f'{ {m: self.choices[self.fixed[m]] for m in names if m in self.fixed} }')

    def sample(self, rng):
        """One configuration from the SAA sampler (docs/method/sparsevit.md, 3.1): per stage, depth/2
        i.i.d. uniform grid values sorted ascending. Depth-2 stages are uniform over the grid; deeper
        stages follow the order-statistics law (not uniform over the sorted tuples)."""
        genes = {}
        for names in self.gene_names:
            for name, i in zip(names, self._draw_stage(names, rng)):
                genes[name] = self.choices[i]
        return genes

    def sample_block_ratios(self, rng, n):
        """``n`` draws of :meth:`sample`, each as per-stage per-block ratios (:meth:`to_block_ratios`)."""
        return [self.to_block_ratios(self.sample(rng)) for _ in range(int(n))]

    def sample_at(self, seed, iteration):
        """The SAA configuration of training iteration ``iteration``: a function of (seed, iteration)
        only, so every rank draws the same one and a resumed run repeats the sequence
        (docs/method/sparsevit.md, 3.1)."""
        return self.sample(iteration_rng(seed, iteration))

    def _sorted(self, genes):
        """Re-sort each stage. With valid inputs the fixed genes stay in place: every free gene lies
        between its neighbouring fixed values in both inputs, so sorting never moves a fixed one."""
        out = {}
        for names in self.gene_names:
            for name, v in zip(names, sorted(genes[n] for n in names)):
                out[name] = v
        return out

    def mutate(self, genes, rng, prob=0.1):
        """Mutation (docs/method/sparsevit.md, 3.3): draw a fresh configuration; each gene takes the
        fresh value with probability ``prob``, else keeps the parent's; then re-sort each stage."""
        fresh = self.sample(rng)
        take = rng.random(len(self.names)) < prob
        child = {n: (fresh[n] if t else genes[n]) for n, t in zip(self.names, take)}
        return self._sorted(child)

    def crossover(self, genes_a, genes_b, rng):
        """Crossover (docs/method/sparsevit.md, 3.3): each gene from either parent with probability
        1/2; then re-sort each stage."""
        pick_a = rng.random(len(self.names)) < 0.5
        child = {n: (genes_a[n] if t else genes_b[n]) for n, t in zip(self.names, pick_a)}
        return self._sorted(child)

"""Validation of per-stage, per-block window pruning ratios (docs/method/sparsevit.md, 1 and 2.4).

A ratio ``r`` is the fraction of windows a block skips. Within a stage, a block reuses a prefix of its
parity's ranking (even blocks: regular windows, odd blocks: shifted windows), so a block cannot keep a
window that an earlier block of the same parity skipped: ratios must be non-decreasing per parity.
"""
from numbers import Real
from typing import Optional, Sequence, Tuple

__all__ = ['validate_pruning_ratios', 'dense_ratios', 'is_dense', 'PUBLISHED_RATIOS', 'named_or_json_ratios']

Ratios = Tuple[Tuple[float, ...], ...]


def dense_ratios(depths: Sequence[int]) -> Ratios:
    """All-zero ratios for ``depths``."""
    return tuple((0.0, ) * int(d) for d in depths)


def is_dense(ratios: Ratios) -> bool:
    """True when no block skips any window."""
    return all(r == 0 for stage in ratios for r in stage)


def validate_pruning_ratios(ratios, depths: Sequence[int], name: str = 'pruning_ratios') -> Ratios:
    """Check ratios against ``depths`` and return them as a tuple of tuples of floats.

    Args:
        ratios: ``None`` (dense), a name of :data:`PUBLISHED_RATIOS` (``'cfg2'``, ``'uniform-0.5'``,
            ...), one float for every block, or one sequence per stage with one float per block, e.g.
            ``[[.6, .6], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]]`` for depths ``(2, 2, 6, 2)``.
        depths: blocks per stage.
        name: field name used in error messages.

    Raises:
        ValueError: naming the stage, the block and the allowed range, for a wrong number of stages, a
            stage list whose length is not its depth, a value outside [0, 1) or a ratio lower than the
            previous one of the same parity in its stage.
    """
    depths = tuple(int(d) for d in depths)
    if ratios is None:
        return dense_ratios(depths)
    if isinstance(ratios, str):
        if ratios not in PUBLISHED_RATIOS:
            raise ValueError(f'{name}={ratios!r} is not a named ratio set; allowed names: '
                             f'{sorted(PUBLISHED_RATIOS)}, or None, a float, or per-stage lists')
        named = PUBLISHED_RATIOS[ratios]
        if not isinstance(named, Real) and tuple(len(s) for s in named) != depths:
            raise ValueError(f'{name}={ratios!r} is defined for Swin-T depths '
                             f'{tuple(len(s) for s in named)}, not depths={depths}')
        ratios = named
    if isinstance(ratios, Real) and not isinstance(ratios, bool):
        _check_value(ratios, name, 'every stage', 'every block')
        return tuple((float(ratios), ) * d for d in depths)
    if isinstance(ratios, (str, bytes)) or not isinstance(ratios, Sequence):
        raise ValueError(f'{name} must be None, a float or {len(depths)} per-stage lists of floats, '
                         f'got {ratios!r}')
    if len(ratios) != len(depths):
        raise ValueError(f'{name} must have {len(depths)} stage lists (one per entry of depths='
                         f'{depths}), got {len(ratios)}')
    out = []
    for s, (stage, depth) in enumerate(zip(ratios, depths)):
        if isinstance(stage, (str, bytes)) or not isinstance(stage, Sequence):
            raise ValueError(f'{name}[{s}] (stage {s}) must be a list of {depth} floats, got {stage!r}')
        if len(stage) != depth:
            raise ValueError(f'{name}[{s}] (stage {s}) must have {depth} ratios, one per block '
                             f'(depths[{s}]={depth}), got {len(stage)}')
        for b, r in enumerate(stage):
            _check_value(r, name, f'stage {s}', f'block {b}')
            if b >= 2 and r < stage[b - 2]:
                parity = 'regular-window (even)' if b % 2 == 0 else 'shifted-window (odd)'
                raise ValueError(
                    f'{name}[{s}][{b}] (stage {s}, block {b}) = {r} is lower than block {b - 2} '
                    f'({stage[b - 2]}); {parity} blocks of a stage must be non-decreasing: allowed '
                    f'range [{stage[b - 2]}, 1)')
        out.append(tuple(float(r) for r in stage))
    return tuple(out)


def _check_value(r, name: str, stage: str, block: str) -> Optional[float]:
    if isinstance(r, bool) or not isinstance(r, Real):
        raise ValueError(f'{name} ({stage}, {block}) must be a float in [0, 1), got {r!r}')
    if not 0.0 <= float(r) < 1.0:
        raise ValueError(f'{name} ({stage}, {block}) = {r} is outside the allowed range [0, 1)')
    return float(r)


#: The reference's released configurations and the baselines, by name (docs/method/sparsevit.md, 1.1).
PUBLISHED_RATIOS = {
    'dense': [[0, 0], [0, 0], [0] * 6, [0, 0]],
    'cfg1': [[.3, .3], [0, 0], [.1, .1, .2, .2, .2, .2], [0, 0]],
    'cfg2': [[.6, .6], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]],
    'cfg3': [[.7, .7], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]],
    'uniform-0.5': 0.5,
}


def named_or_json_ratios(text: str):
    """A name of :data:`PUBLISHED_RATIOS` or a JSON list/number -> ratios (not yet validated)."""
    import json
    if text in PUBLISHED_RATIOS:
        return PUBLISHED_RATIOS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f'ratios: {text!r} is neither one of {sorted(PUBLISHED_RATIOS)} nor JSON') from e

"""Argument checks shared by the ``make_toy_*.py`` command-line generators."""
from typing import Dict, Optional, Tuple


def check_ranges(args, ranges: Dict[str, Tuple[float, Optional[float]]]) -> None:
    """Raise one ``ValueError`` naming the first flag outside its inclusive range.

    Args:
        args: parsed ``argparse.Namespace``.
        ranges: ``{attribute: (lo, hi)}``; ``hi=None`` means no upper bound.
    """
    for name, (lo, hi) in ranges.items():
        value = getattr(args, name)
        if value < lo or (hi is not None and value > hi):
            allowed = f'>= {lo}' if hi is None else f'in [{lo}, {hi}]'
            raise ValueError(f'--{name.replace("_", "-")} must be {allowed}, got {value}')

"""The prune-and-grow steps of a run, counted by the controller training uses (``update_due``)."""
from torch import nn

from mmsparse.sparsity.dynamic_sparsity import PruneGrowController
from mmsparse.sparsity.masks import ParameterMasker


def runtime_update_steps(update_interval, t_end, t_total):
    """Steps ``t`` (from 1) at which ``PruneGrowController.update_due(t)`` fires in a run."""
    controller = PruneGrowController(
        ParameterMasker(nn.Linear(8, 8), density=0.5),
        update_interval=update_interval,
        t_end=t_end,
        t_total=t_total)
    # update_due is False from T_end on: no need to walk the rest of the run
    return [t for t in range(1, min(t_end, t_total) + 1) if controller.update_due(t)]

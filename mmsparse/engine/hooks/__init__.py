"""mmsparse hooks (registered in ``mmsparse.registry.HOOKS``)."""
from .dist_consistency_hook import DistConsistencyHook  # noqa: F401
from .prune_grow_hook import PruneGrowHook  # noqa: F401
from .sparsity_aware_adaptation_hook import SparsityAwareAdaptationHook  # noqa: F401

"""mmsparse hooks (registered in ``mmsparse.registry.HOOKS``)."""
from .dist_consistency_hook import DistConsistencyHook  # noqa: F401

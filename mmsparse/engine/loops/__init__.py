"""mmsparse loops (registered in ``mmsparse.registry.LOOPS``)."""
from .evolution_search_loop import EvolutionSearchLoop  # noqa

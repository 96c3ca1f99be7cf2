"""mmengine plug-ins of mmsparse: hooks, loops, optimizer wrappers and model wrappers."""
from mmsparse.openmmlab import setup_openmmlab

setup_openmmlab()

from .hooks import *  # noqa: E402,F401,F403
from .loops import *  # noqa: E402,F401,F403
from .model_wrappers import MMCPUDistributedDataParallel  # noqa: E402,F401
from .optimizers import *  # noqa: E402,F401,F403

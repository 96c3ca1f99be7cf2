"""mmengine plug-ins of mmsparse: hooks, loops, optimizer wrappers and model wrappers."""
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .model_wrappers import MMCPUDistributedDataParallel  # noqa: F401
from .optimizers import *  # noqa: F401,F403

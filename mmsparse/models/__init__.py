"""mmsparse models: backbones (and their building blocks) registered in ``mmsparse.registry.MODELS``."""
from mmsparse.openmmlab import setup_openmmlab

setup_openmmlab()

from .backbones import *  # noqa: E402,F401,F403

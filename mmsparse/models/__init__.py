"""mmsparse models: backbones (and their building blocks) registered in ``mmsparse.registry.MODELS``."""
from .backbones import *  # noqa: F401,F403

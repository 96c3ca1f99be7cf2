"""mmsparse: sparse Vision Transformers (SparseViT, SViTE) as OpenMMLab plug-ins.

``import mmsparse`` stays light: the torch-only core (``mmsparse.sparsity``) and the toy data
generators import without the OpenMMLab stack. When mmengine is already loaded (an mmengine config's
``custom_imports=dict(imports=['mmsparse'])``), the OpenMMLab set-up runs here too: version checks and
the checkpoint loader fix (:func:`mmsparse.openmmlab.setup_openmmlab`). The plug-in packages
(``mmsparse.models``, ``mmsparse.engine``) always run it, and the registries import them on first use.
"""
import sys

from .version import __version__, version_info

if 'mmengine' in sys.modules:
    from .openmmlab import setup_openmmlab
    setup_openmmlab()

__all__ = ['__version__', 'version_info']

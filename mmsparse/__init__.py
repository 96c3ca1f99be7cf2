"""mmsparse: sparse Vision Transformers (SparseViT, SViTE) as OpenMMLab plug-ins."""
import mmengine
from mmengine.utils import digit_version

from .version import __version__, version_info

mmcv_minimum_version = '2.1.0'
mmcv_maximum_version = '2.2.0'
mmengine_minimum_version = '0.10.7'
mmengine_maximum_version = '1.0.0'


def _check_versions():
    try:
        import mmcv
    except ImportError as e:  # pragma: no cover
        raise ImportError('mmsparse needs mmcv 2.1.0 built with ops; run `make install`') from e
    mmcv_version = digit_version(mmcv.__version__)
    assert digit_version(mmcv_minimum_version) <= mmcv_version < digit_version(mmcv_maximum_version), (
        f'MMCV=={mmcv.__version__} is used but incompatible. Please install '
        f'mmcv>={mmcv_minimum_version}, <{mmcv_maximum_version} (run `make install`).')
    mmengine_version = digit_version(mmengine.__version__)
    assert (digit_version(mmengine_minimum_version) <= mmengine_version <
            digit_version(mmengine_maximum_version)), (
        f'MMEngine=={mmengine.__version__} is used but incompatible. Please install '
        f'mmengine>={mmengine_minimum_version}, <{mmengine_maximum_version}.')


_check_versions()

# mmengine 0.10.7 cannot read its own checkpoints under torch>=2.6 (weights_only); see utils/checkpoint
from .utils.checkpoint import install_checkpoint_loader  # noqa: E402

install_checkpoint_loader()

__all__ = ['__version__', 'version_info']

"""Shared pytest setup for mmsparse."""
import os
import os.path as osp
import sys
import tempfile

# KittiMetric's BEV/3D IoU kernels are numba.cuda: use the simulator on CPU (before numba loads)
os.environ.setdefault('NUMBA_ENABLE_CUDASIM', '1')

# what the code caches at run time (SparseSwin's measured attention choice) goes to a folder of this
# test session, not to the user's ~/.cache/mmsparse; subprocess tools inherit it
os.environ['MMSPARSE_CACHE'] = tempfile.mkdtemp(prefix='mmsparse-test-cache-')

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pytest  # noqa: E402


@pytest.fixture(scope='session')
def toy_imagenet(tmp_path_factory):
    """A small toy ImageNet tree (8 classes x 16 train / 4 val images, 32x32), generated once."""
    from tests.tool_runner import run_tool
    out = tmp_path_factory.mktemp('data') / 'toy_imagenet'
    run_tool([
        'dataset_converters/make_toy_imagenet.py', '--out',
        str(out), '--num-classes', '8', '--per-class', '16', '--val-per-class', '4', '--size', '32', '--seed',
        '0'
    ])
    return str(out)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for the test: on a 2-core machine shared with other processes, two OpenMP
    threads per process thrash (a tiny Swin ran ~40x slower than with one)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Tests that build through a registry depend on the current mmengine ``DefaultScope``; a test
    that creates one (``register_all_modules``, a Runner) must not change it for the tests after it."""
    from mmengine.registry import DefaultScope
    instances = DefaultScope._instance_dict
    current = next(reversed(instances)) if instances else None
    yield
    if current is not None and current in instances:
        instances.move_to_end(current)

"""The core (``mmsparse.sparsity``) and the toy data generators import with the whole OpenMMLab stack
blocked: nothing below the plug-in layer may depend on it."""
import glob
import os.path as osp
import subprocess
import sys

from tests.tool_runner import REPO_ROOT

BLOCKED = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain', 'mmdet3d')

# a meta-path finder that refuses the blocked packages, then every module to check, by file
PROBE = '''
import importlib, importlib.abc, runpy, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'blocked: {{name}}')
        return None
sys.meta_path.insert(0, Block())
for module in {modules!r}:
    importlib.import_module(module)
for path in {scripts!r}:
    runpy.run_path(path, run_name='not_main')  # module level only: imports and definitions
leaked = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)
assert not leaked, leaked
print('ok', len({modules!r}), len({scripts!r}))
'''


def core_modules():
    files = sorted(glob.glob(osp.join(REPO_ROOT, 'mmsparse', 'sparsity', '*.py')))
    return [
        'mmsparse.sparsity.' + osp.splitext(osp.basename(f))[0]
        for f in files if not f.endswith('__init__.py')
    ] + ['mmsparse.sparsity', 'mmsparse.datasets.toy', 'mmsparse']


def test_core_and_toy_generators_import_without_openmmlab():
    modules = core_modules()
    scripts = sorted(glob.glob(osp.join(REPO_ROOT, 'tools', 'dataset_converters', 'make_toy_*.py')))
    assert len(modules) > 10 and len(scripts) == 4
    code = PROBE.format(blocked=BLOCKED, modules=modules, scripts=scripts)
    proc = subprocess.run([sys.executable, '-c', code],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300,
                          env={
                              'PYTHONPATH': REPO_ROOT,
                              'PATH': '/usr/bin:/bin'
                          })
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['ok', str(len(modules)), str(len(scripts))]

"""tools/install/*.sh hand on absolute paths whatever path the caller gives, and trust only a complete
cached wheel (the build itself runs in CI from an empty cache, every time)."""
import hashlib
import os
import os.path as osp
import subprocess
import sys
import zipfile

from tests.tool_runner import REPO_ROOT

INSTALL = osp.join(REPO_ROOT, 'tools', 'install')


def cache_key():
    import torch
    tag = f'cp{sys.version_info[0]}{sys.version_info[1]}'
    return f"mmcv2.1.0-torch{torch.__version__.split('+')[0]}-cpu-{tag}-{os.uname().machine}"


def run(args, cwd, **env):
    return subprocess.run(['bash', *args],
                          cwd=cwd,
                          capture_output=True,
                          text=True,
                          timeout=120,
                          env=dict(os.environ, **env))


def test_build_mmcv_takes_a_relative_interpreter_and_returns_the_cached_wheel_absolute(tmp_path):
    wheel_dir = tmp_path / 'cache' / 'wheels' / cache_key()
    wheel_dir.mkdir(parents=True)
    wheel = wheel_dir / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    with zipfile.ZipFile(wheel, 'w') as z:
        z.writestr('mmcv/__init__.py', '')
    # the interpreter given relative to the caller's directory, as `make install VENV=.venv` does
    rel_python = osp.relpath(sys.executable, tmp_path)
    proc = run([osp.join(INSTALL, 'build_mmcv.sh'), rel_python], cwd=tmp_path, MMSPARSE_CACHE='cache')
    assert proc.returncode == 0, proc.stderr
    assert 'using cached wheel' in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == str(wheel)  # absolute, though the cache was relative


def test_install_resolves_a_relative_venv_to_an_absolute_path(tmp_path):
    venv = tmp_path / 'work' / 'venv'
    (venv / 'bin').mkdir(parents=True)
    os.symlink(sys.executable, venv / 'bin' / 'python')
    parts = sorted(
        osp.join(REPO_ROOT, 'requirements', f) for f in os.listdir(osp.join(REPO_ROOT, 'requirements'))
        if f.endswith('.txt'))
    parts += [osp.join(REPO_ROOT, 'setup.py')]
    parts += sorted(osp.join(INSTALL, f) for f in os.listdir(INSTALL) if f.endswith('.sh'))
    digest = hashlib.sha256(b''.join(open(p, 'rb').read() for p in parts)).hexdigest()
    (venv / '.mmsparse-install-stamp').write_text(digest + '\n')
    proc = run([osp.join(INSTALL, 'install.sh'), '../work/venv'], cwd=tmp_path / 'work')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f'[install] {venv} is up to date'

"""Helpers shared by the toy-dataset tests: load a generator script, fingerprint a folder."""
import hashlib
import importlib.util
import os
import os.path as osp

import pytest

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def load_tool(name: str):
    """Import ``tools/dataset_converters/<name>.py`` as a module (tools/ is not a package)."""
    path = osp.join(REPO, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'toy_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tree_digest(root: str) -> dict:
    """``{relative path: sha1 of bytes}`` of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


@pytest.fixture(scope='session')
def toy_tool():
    """``toy_tool(name)`` -> the imported generator module."""
    return load_tool


@pytest.fixture(scope='session')
def digest():
    """``digest(root)`` -> ``{relative path: sha1}`` of the files under ``root``."""
    return tree_digest


@pytest.fixture(scope='session')
def repo_root():
    return REPO

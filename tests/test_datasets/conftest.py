"""Helpers shared by the toy-dataset tests: load a generator script, fingerprint a folder."""
import pytest

from tests.tool_runner import REPO_ROOT, load_tool, tree_digest


def load_generator(name: str):
    """Import ``tools/dataset_converters/<name>.py`` as a module."""
    return load_tool(f'tools/dataset_converters/{name}.py', name=f'toy_tool_{name}')


@pytest.fixture(scope='session')
def toy_tool():
    """``toy_tool(name)`` -> the imported generator module."""
    return load_generator


@pytest.fixture(scope='session')
def digest():
    """``digest(root)`` -> ``{relative path: sha1}`` of the files under ``root``."""
    return tree_digest


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT

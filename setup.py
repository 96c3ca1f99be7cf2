"""mmsparse: activation- and weight-sparse Vision Transformers for OpenMMLab."""
import os.path as osp
import re
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    with open(osp.join(HERE, 'mmsparse', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def parse_requirements(name):
    """Requirement strings of ``requirements/<name>``, comments and pip flags removed."""
    reqs = []
    with open(osp.join(HERE, 'requirements', name)) as f:
        for line in f:
            line = line.split('#', 1)[0].replace('--no-deps', '').strip()
            if line:
                reqs.append(line)
    return reqs


if __name__ == '__main__':
    setup(
        name='mmsparse',
        version=read_version(),
        description='SparseViT and SViTE for OpenMMLab: sparse Vision Transformers that run faster',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
        include_package_data=True,
        python_requires='>=3.11',
        install_requires=parse_requirements('runtime.txt'),
        extras_require={
            'mm': parse_requirements('mminstall.txt'),
            'mono3d': parse_requirements('optional.txt'),
            'tests': parse_requirements('tests.txt'),
            'deploy': parse_requirements('deploy.txt'),
        },
        license='Apache License 2.0',
        zip_safe=False)

"""Time mmcv op sources compiled the old way (debug info, headers parsed per file) and through
``pch_cxx.sh`` (one precompiled torch header, no debug info), interleaved file by file in one run.

    python tools/install/compare_mmcv_compiles.py [--sample 12] [--jobs 2]

Uses the interpreter running it (its torch headers) and mmcv 2.1.0's sdist from the package index. It
compiles every k-th of the 77 CPU sources with the compile line setuptools/torch use for mmcv
(``sysconfig`` CFLAGS, torch include paths, ``-std=c++20``), alternating old and new per file, and
extrapolates both to the whole build at ``--jobs`` parallel compiles. The precompiled header's own build
is timed once and added to the new total.
"""
import argparse
import glob
import os
import os.path as osp
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(osp.dirname(HERE)))


def compile_flags(tree):
    """The flags torch's BuildExtension puts on each mmcv CPU source (without -c/-o)."""
    from torch.utils.cpp_extension import include_paths
    cflags = shlex.split(sysconfig.get_config_var('CFLAGS') or '')
    includes = [f'-I{tree}/mmcv/ops/csrc/common'] + [f'-I{p}' for p in include_paths()]
    includes.append(f"-I{sysconfig.get_paths()['include']}")
    return cflags + ['-fPIC'] + includes + [
        '-DMMCV_WITH_OPS', '-DTORCH_API_INCLUDE_EXTENSION_H', '-DTORCH_EXTENSION_NAME=_ext',
        '-D_GLIBCXX_USE_CXX11_ABI=1', '-std=c++20'
    ]


def timed(cmd, env=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sample', type=int, default=12, help='sources to compile each way')
    p.add_argument('--jobs', type=int, default=2, help='parallel compiles to extrapolate to')
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix='mmcv-compare-')
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    from mmsparse.sparsity.machine import describe_machine
    subprocess.run([
        sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--no-binary', ':all:',
        '--no-build-isolation', '-d', work, 'mmcv==2.1.0'
    ],
                   check=True)
    with tarfile.open(osp.join(work, 'mmcv-2.1.0.tar.gz')) as tar:
        tar.extractall(work, filter='data')
    tree = osp.join(work, 'mmcv-2.1.0')
    sources = sorted(
        glob.glob(f'{tree}/mmcv/ops/csrc/pytorch/*.cpp') +
        glob.glob(f'{tree}/mmcv/ops/csrc/pytorch/cpu/*.cpp'))
    step = max(1, len(sources) // args.sample)
    sample = sources[::step][:args.sample]
    flags = compile_flags(tree)
    cxx = os.environ.get('CXX', 'c++')
    env = dict(os.environ, MMSPARSE_REAL_CXX=cxx, MMSPARSE_PCH_DIR=osp.join(work, 'pch'))
    wrapper = osp.join(HERE, 'pch_cxx.sh')
    # the precompiled header's own build: a compile of an empty source through the wrapper
    empty = osp.join(work, 'empty.cpp')
    open(empty, 'w').close()
    pch_build = timed([wrapper, *flags, '-c', empty, '-o', empty + '.o'], env)
    old, new = [], []
    print(f'# {describe_machine()}')
    print('| source | old s (-g, headers per file) | new s (PCH, -g0) |')
    print('|---|---|---|')
    for src in sample:
        out = osp.join(work, osp.basename(src) + '.o')
        old.append(timed([cxx, *flags, '-c', src, '-o', out]))
        new.append(timed([wrapper, *flags, '-c', src, '-o', out], env))
        print(
            f'| {osp.relpath(src, tree + "/mmcv/ops/csrc/pytorch")} | {old[-1]:.1f} | {new[-1]:.1f} |',
            flush=True)
    n = len(sources)
    old_total = statistics.mean(old) * n / args.jobs
    new_total = pch_build + statistics.mean(new) * n / args.jobs
    print(f'\nmean per source: old {statistics.mean(old):.1f} s, new {statistics.mean(new):.1f} s '
          f'({statistics.mean(old) / statistics.mean(new):.1f}x); precompiled header built once in '
          f'{pch_build:.1f} s')
    print(f'extrapolated to all {n} sources at {args.jobs} parallel compiles: old {old_total:.0f} s, '
          f'new {new_total:.0f} s ({old_total / new_total:.1f}x)')


if __name__ == '__main__':
    main()

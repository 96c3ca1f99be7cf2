"""One line that names the machine a benchmark ran on: CPU model and vector ISA, or the GPU.

Speed-up ratios differ between machine classes (measured: docs/benchmark.md, "SparseSwin (SparseViT)
backbone, CPU", Machine), so every benchmark table carries this line.
"""
import os
import platform

import torch

__all__ = ['cpu_model', 'cpu_isa', 'cpu_description', 'describe_machine']

# strongest first: the first flag found names the ISA class
_ISA_FLAGS = (('amx_tile', 'AMX'), ('avx512f', 'AVX-512'), ('avx2', 'AVX2'), ('avx', 'AVX'), ('sse4_2',
                                                                                              'SSE4.2'))


def _cpuinfo_field(name: str) -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(name):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return ''


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows elsewhere."""
    return _cpuinfo_field('model name') or platform.processor() or platform.machine()


def cpu_isa() -> str:
    """The vector ISA classes the CPU has, strongest first, e.g. ``'AMX + AVX-512 + AVX2'``,
    ``'AVX2'`` (AVX2 only). Empty where ``/proc/cpuinfo`` has no flags (not Linux x86)."""
    flags = set(_cpuinfo_field('flags').split())
    have = [name for flag, name in _ISA_FLAGS if flag in flags]
    # name the classes that change the kernels: AMX (bf16/int8 tiles), AVX-512, AVX2
    return ' + '.join(n for n in have if n in ('AMX', 'AVX-512', 'AVX2')) or (have[0] if have else '')


def cpu_description() -> str:
    """``'<model>, ISA <isa>, <n> cores'``: the CPU line of a benchmark table header."""
    return f'{cpu_model()}, ISA {cpu_isa() or "unknown"}, {os.cpu_count()} cores'


def describe_machine(device='cpu') -> str:
    """``'CPU: <model>, ISA <isa>, <n> cores, torch <v> (<t> threads)'`` or ``'GPU: <name>, ...'``."""
    device = torch.device(device)
    if device.type == 'cuda':
        return (f'GPU: {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}, '
                f'torch {torch.__version__}; host CPU {cpu_model()}')
    return f'CPU: {cpu_description()}, torch {torch.__version__} ({torch.get_num_threads()} threads)'

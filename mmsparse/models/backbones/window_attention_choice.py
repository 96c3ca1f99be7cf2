"""``SparseSwin(fused_attention='auto')``: pick the attention kernel by measuring it, once per machine.

Whether ``F.scaled_dot_product_attention`` beats the op-by-op attention on 49-token windows depends on
the CPU's ISA and the PyTorch build (docs/benchmark.md: SDPA wins on an AVX-512/AMX Xeon, op-by-op on
an AVX2 EPYC), so an ``'auto'`` backbone times both (``choose_window_attention``) at its first pruned
forward without gradient and keeps the faster. The verdict is stored in
``${MMSPARSE_CACHE:-~/.cache/mmsparse}/window_attention.json`` under a key naming the machine (CPU
model, ISA, threads, torch version, or the GPU), the architecture and the input shape, so a later
process on the same machine reads it instead of measuring again.
"""
import json
import os
import os.path as osp
import tempfile
import warnings
from typing import Callable, Optional, Sequence

import torch

from mmsparse.sparsity.machine import describe_machine

__all__ = ['attention_cache_file', 'attention_choice_key', 'pick_window_attention']

CACHE_NAME = 'window_attention.json'


def attention_cache_file() -> str:
    """Where measured choices are kept: ``$MMSPARSE_CACHE/window_attention.json`` (default cache
    ``~/.cache/mmsparse``, the one the install keeps its mmcv wheel in)."""
    root = os.environ.get('MMSPARSE_CACHE') or osp.join(osp.expanduser('~'), '.cache', 'mmsparse')
    return osp.join(root, CACHE_NAME)


def attention_choice_key(backbone: torch.nn.Module, input_shape: Sequence[int], batch: int, device) -> str:
    """The machine, the architecture and the input a measured choice holds for."""
    arch = backbone.arch_args
    heads = [blocks.blocks[0].attn.w_msa.num_heads for blocks in backbone.stages]
    return (f'{describe_machine(device)} | embed {arch["embed_dims"]} depths {list(backbone.depths)} '
            f'heads {heads} window {arch["window_size"]} | input {int(batch)}x{int(input_shape[0])}x'
            f'{int(input_shape[1])}')


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            table = json.load(f)
        if isinstance(table, dict):
            return table
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        pass
    warnings.warn(f'{path} is not a JSON object of measured attention choices: measuring again and '
                  'rewriting it')
    return {}


def _write(path: str, table: dict) -> None:
    """Atomically (a crash mid-write leaves the old file), and never failing the forward over it."""
    try:
        os.makedirs(osp.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=osp.dirname(path), prefix='.window_attention.')
        with os.fdopen(fd, 'w') as f:
            json.dump(table, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f'could not store the measured attention choice in {path}: {e}')


def pick_window_attention(backbone: torch.nn.Module,
                          input_shape: Sequence[int],
                          batch: int = 1,
                          device=None,
                          cache_file: Optional[str] = None,
                          measure: Optional[Callable[[Callable], float]] = None) -> dict:
    """Set ``backbone.window_options.fused_attention`` to the faster kernel on this machine.

    Args:
        backbone: the ``SparseSwin``.
        input_shape: ``(H, W)`` of the images in pixels; batch: images per forward.
        device: where it runs (default: the backbone's parameters' device).
        cache_file: the JSON store (default :func:`attention_cache_file`); a known key is not measured.
        measure: as in ``choose_window_attention`` (a test's stand-in for the clock).

    Returns:
        ``dict(fused_attention=bool, fused_ms=..., unfused_ms=..., measured=bool)``; ``measured`` is
        False when the choice came from the store.
    """
    from .swin_block_timer import choose_window_attention
    if device is None:
        device = next(backbone.parameters()).device
    path = cache_file or attention_cache_file()
    key = attention_choice_key(backbone, input_shape, batch, device)
    known = _read(path).get(key)
    if isinstance(known, dict) and isinstance(known.get('fused_attention'), bool):
        backbone.window_options = backbone.window_options._replace(fused_attention=known['fused_attention'])
        return dict(known, measured=False)
    was_training = backbone.training
    result = choose_window_attention(backbone, input_shape, batch, device, measure=measure)
    backbone.train(was_training)
    table = _read(path)  # another process may have added keys meanwhile
    table[key] = {k: result[k] for k in ('fused_attention', 'fused_ms', 'unfused_ms')}
    _write(path, table)
    return dict(result, measured=True)

"""Run the official SparseViT backbone next to ours, from a local copy the user provides.

The authors' code (``mit-han-lab/sparsevit``, file ``mmdet/models/backbones/sparsevit.py``) is an
mmdetection 2.x fork: it imports ``mmcv.runner``, ``mmdet.utils.get_root_logger`` and its package's
``..builder``, none of which exist in the OpenMMLab 2.x stack we run on. mmsparse does not ship that
file. ``benchmark_backbone.py --official FILE`` loads a copy the user downloaded, with stand-ins for those
three imports (only its ``init_weights(pretrained=str)`` path uses them, and the benchmark never calls
it), gives it our model's weights and sets its ratios, so both are timed on the same weights in one run.

The official model keeps per-block ratios in ``layers[s].pruning_ratios`` and keeps
``int(nW * (1 - r))`` windows (float truncation: ``keep_rounding='reference_float'`` on our side). Its
weights use the original Swin names (``layers.{s}.blocks.{b}.attn.qkv``, ``mlp.fc1``,
``patch_embed.proj``, the 2x2-concat order of PatchMerging) plus one ``norm{s}`` per output, i.e.
:func:`ours_to_official` of the model converter with our output norms kept.
"""
import contextlib
import importlib.util
import os.path as osp
import sys
import types
from typing import Sequence

import torch

_PACKAGE = '_official_sparsevit'


class _Registry:
    """Stand-in for the fork's ``BACKBONES`` registry: ``register_module()`` returns the class as is."""

    def register_module(self, *args, **kwargs):
        if args and isinstance(args[0], type):
            return args[0]
        return lambda cls: cls


@contextlib.contextmanager
def _fork_imports():
    """``mmcv.runner``, ``mmdet.utils.get_root_logger`` and ``..builder`` while the file is executed;
    everything is put back afterwards, so the rest of the process sees the real packages unchanged."""
    import logging

    import mmdet.utils
    runner = types.ModuleType('mmcv.runner')
    runner.BaseModule = torch.nn.Module  # the benchmark never calls init_weights(pretrained=str)

    def _no_checkpoint(*args, **kwargs):
        raise RuntimeError('the official SparseViT is benchmarked with our weights: it loads no checkpoint')

    runner._load_checkpoint = _no_checkpoint
    package = types.ModuleType(_PACKAGE)
    package.__path__ = []
    backbones = types.ModuleType(f'{_PACKAGE}.backbones')
    backbones.__path__ = []
    builder = types.ModuleType(f'{_PACKAGE}.builder')
    builder.BACKBONES = _Registry()
    added = {
        'mmcv.runner': runner,
        _PACKAGE: package,
        f'{_PACKAGE}.backbones': backbones,
        f'{_PACKAGE}.builder': builder
    }
    saved = {name: sys.modules.get(name) for name in added}
    had_logger = hasattr(mmdet.utils, 'get_root_logger')
    sys.modules.update(added)
    if not had_logger:
        mmdet.utils.get_root_logger = lambda *a, **k: logging.getLogger('official_sparsevit')
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        if not had_logger:
            del mmdet.utils.get_root_logger


def load_official_module(path: str) -> types.ModuleType:
    """Execute the official ``sparsevit.py`` at ``path`` and return it as a module (``.SparseViT``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--official: no file {path!r}; download mmdet/models/backbones/sparsevit.py '
                                'from github.com/mit-han-lab/sparsevit')
    name = f'{_PACKAGE}.backbones.sparsevit'
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with _fork_imports():
        spec.loader.exec_module(module)
    if not hasattr(module, 'SparseViT'):
        raise ValueError(f'--official: {path!r} defines no SparseViT class (is it the backbone file?)')
    return module


def official_state_dict(ours: torch.nn.Module) -> dict:
    """Our SparseSwin's weights under the official model's names."""
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'model_converters'))
    try:
        from swin_to_sparse_swin import ours_to_official
    finally:
        sys.path.pop(0)
    state = ours.state_dict()
    out = ours_to_official(state)
    # the per-output norms: ``norm{s}`` in both layouts
    out.update({k: v for k, v in state.items() if k.startswith('norm') and not k.startswith('norm.')})
    return out


def build_official(path: str, ours: torch.nn.Module) -> torch.nn.Module:
    """The official SparseViT with the architecture and weights of ``ours`` (a ``SparseSwin``), in eval mode.

    Raises:
        ValueError: when the two state dicts do not match key for key and shape for shape.
    """
    module = load_official_module(path)
    stage0 = ours.stages[0].blocks[0]
    official = module.SparseViT(
        patch_size=ours.patch_embed.projection.kernel_size[0],
        in_chans=ours.patch_embed.projection.in_channels,
        embed_dim=ours.patch_embed.projection.out_channels,
        depths=[len(s.blocks) for s in ours.stages],
        num_heads=[s.blocks[0].attn.w_msa.num_heads for s in ours.stages],
        window_size=stage0.attn.w_msa.window_size[0],
        mlp_ratio=stage0.ffn.feedforward_channels / ours.patch_embed.projection.out_channels,
        drop_path_rate=0.,
        out_indices=tuple(ours.out_indices))
    missing, unexpected = official.load_state_dict(official_state_dict(ours), strict=False)
    missing = [k for k in missing if not k.endswith('relative_position_index')]  # a buffer both build
    if missing or unexpected:
        raise ValueError(f'official SparseViT weights do not match ours: missing {missing[:5]}, '
                         f'unexpected {unexpected[:5]}')
    official.to(next(ours.parameters()).device)
    official.eval()  # its train() override returns None: no chaining
    return official


def set_official_ratios(official: torch.nn.Module, block_ratios: Sequence[Sequence[float]]) -> None:
    """Per-stage, per-block ratios (one list per stage) on the official model."""
    if len(block_ratios) != len(official.layers):
        raise ValueError(f'ratios: {len(block_ratios)} stages given, the official model has '
                         f'{len(official.layers)}')
    for layer, ratios in zip(official.layers, block_ratios):
        layer.pruning_ratios = [float(r) for r in ratios]

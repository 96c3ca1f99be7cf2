"""``SparseDeiT``: mmpretrain's DeiT with S2ViTE head/neuron masks, compact export and SViTE+ tokens.

A drop-in for ``mmpretrain.VisionTransformer`` (arch ``deit-tiny|small|base``) and
``DistilledVisionTransformer``: same constructor arguments, same state_dict keys, bit-identical
outputs with no sparsity. Unstructured SViTE needs nothing from the backbone (the torch-only
``ParameterMasker`` masks its weights). On top:

- ``structured=dict(head_density | heads_kept, mlp_density | neurons_kept, mask_qkv_bias, seed)``
  adds bool buffers ``layers.i.attn.head_mask`` (H,) and ``layers.i.neuron_mask`` (F,) and keeps the
  owned weight slices at exactly zero (docs/method/svite.md, 2.1); :meth:`SparseDeiT.export_compact`
  removes them.
- ``token_selector=dict(num_tokens | keep_ratio, placement, train_drop, eval_noise)`` inserts the
  SViTE+ selector before block ``placement``; at inference dropped tokens are physically removed.
"""
import copy
import inspect
import math
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from mmsparse.registry import MODELS
from mmsparse.sparsity.erk import check_density
from mmsparse.sparsity.importance import (HeadScoreCapture, apply_head_mask, apply_neuron_mask,
                                          head_proj_cols, head_qkv_rows)
from mmsparse.sparsity.masks import sample_unit_mask
from mmsparse.sparsity.token_selection import check_keep_ratio
from ..layers.deit_layers import SparseEncoderLayer, TokenSelector

__all__ = ['SparseDeiT', 'SparseDistilledDeiT']

_LAYER_KEYS = {'num_heads', 'feedforward_channels', 'head_dims'}


def _reapply_masks(module: 'SparseDeiT', incompatible_keys) -> None:
    """Load-state-dict post hook (a module-level function, so the model stays picklable)."""
    module.apply_structured_masks()


def _check_structured(cfg: Optional[dict], num_heads: int, hidden: int) -> Optional[dict]:
    """Validate ``structured`` and turn densities into per-block unit counts."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    allowed = {'head_density', 'heads_kept', 'mlp_density', 'neurons_kept', 'mask_qkv_bias', 'seed'}
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f'`structured` got unknown keys {sorted(unknown)}; allowed {sorted(allowed)}')
    if 'heads_kept' in cfg:
        heads = cfg['heads_kept']
        if not isinstance(heads, int) or not 1 <= heads <= num_heads:
            raise ValueError(f'`structured.heads_kept` must be an int in [1, {num_heads}] '
                             f'(heads to keep <= heads), got {heads!r}')
    else:
        dens = check_density(cfg.get('head_density', 1.0), 'structured.head_density')
        heads = int(math.floor(num_heads * dens))
        if heads < 1:
            raise ValueError(f'`structured.head_density` keeps floor({num_heads} * {dens}) = 0 heads; '
                             f'it must be >= {1 / num_heads:g}')
    if 'neurons_kept' in cfg:
        neurons = cfg['neurons_kept']
        if not isinstance(neurons, int) or not 1 <= neurons <= hidden:
            raise ValueError(f'`structured.neurons_kept` must be an int in [1, {hidden}], '
                             f'got {neurons!r}')
    else:
        dens = check_density(cfg.get('mlp_density', 1.0), 'structured.mlp_density')
        neurons = int(math.floor(hidden * dens))
        if neurons < 1:
            raise ValueError(f'`structured.mlp_density` keeps 0 of {hidden} neurons')
    return dict(
        heads_kept=heads,
        neurons_kept=neurons,
        mask_qkv_bias=bool(cfg.get('mask_qkv_bias', True)),
        seed=int(cfg.get('seed', 0)))


def _check_selector(cfg: Optional[dict], total_tokens: int, num_extra: int, num_layers: int,
                    out_type: str) -> Optional[dict]:
    """Validate ``token_selector``; exactly one of ``num_tokens`` / ``keep_ratio``."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    allowed = {'num_tokens', 'keep_ratio', 'placement', 'train_drop', 'eval_noise'}
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f'`token_selector` got unknown keys {sorted(unknown)}; '
                         f'allowed {sorted(allowed)}')
    if out_type != 'cls_token':
        raise ValueError('`token_selector` needs out_type="cls_token" (dropped tokens leave no '
                         f'feature map), got out_type={out_type!r}')
    if ('num_tokens' in cfg) == ('keep_ratio' in cfg):
        raise ValueError('`token_selector` needs exactly one of `num_tokens` and `keep_ratio`')
    if 'num_tokens' in cfg:
        n = cfg['num_tokens']
        if isinstance(n, bool) or not isinstance(n, int) or not num_extra < n <= total_tokens:
            raise ValueError(f'`token_selector.num_tokens` must be an int in '
                             f'[{num_extra + 1}, {total_tokens}], got {n!r}')
    else:
        check_keep_ratio(cfg['keep_ratio'], 'token_selector.keep_ratio')
    placement = cfg.setdefault('placement', 0)
    if isinstance(placement, bool) or not isinstance(placement, int) \
            or not 0 <= placement < num_layers:
        raise ValueError(f'`token_selector.placement` must be a block index in [0, {num_layers - 1}]'
                         f', got {placement!r}')
    if cfg.setdefault('train_drop', 'remove') not in ('remove', 'zero'):
        raise ValueError("`token_selector.train_drop` must be 'remove' or 'zero', "
                         f"got {cfg['train_drop']!r}")
    cfg.setdefault('eval_noise', False)
    return cfg


@MODELS.register_module()
class SparseDeiT(VisionTransformer):
    """DeiT backbone with S2ViTE structured masks, compact export and the SViTE+ token selector.

    Args:
        *args, **kwargs: every argument of mmpretrain's ``VisionTransformer``. ``layer_cfgs``
            entries may also carry ``num_heads``, ``feedforward_channels`` and ``head_dims``
            (a compact export records its per-block shapes there).
        structured (dict, optional): S2ViTE masks, keys ``head_density`` (or ``heads_kept``),
            ``mlp_density`` (or ``neurons_kept``), ``mask_qkv_bias`` (default True), ``seed``.
        token_selector (dict, optional): ``num_tokens`` (int in [extra + 1, total tokens]) or
            ``keep_ratio`` (in (0, 1]), ``placement`` (block index, default 0), ``train_drop``
            ('remove' | 'zero'), ``eval_noise`` (bool).

    Input (B, 3, H, W) -> tuple of (B, C) class-token features (or as ``out_type`` says).
    """
    num_extra_tokens = 1

    def __init__(self,
                 arch='deit-small',
                 *args,
                 structured: Optional[dict] = None,
                 token_selector: Optional[dict] = None,
                 **kwargs):
        # name every argument (positional ones too): the compact export re-creates the model from
        # them, and the rebuilt layers must see the same drop rates / norms as the parent's
        bound = inspect.signature(VisionTransformer.__init__).bind(None, arch, *args, **kwargs)
        init_args = {k: v for k, v in bound.arguments.items() if k != 'self'}
        layer_cfgs = init_args.pop('layer_cfgs', dict())
        # the parent builds mmpretrain layers that we replace below; it must not see our extra
        # layer keys (head_dims) its TransformerEncoderLayer does not take
        super().__init__(**init_args, layer_cfgs=dict())
        self._init_args = dict(
            init_args,
            layer_cfgs=copy.deepcopy(layer_cfgs),
            structured=copy.deepcopy(structured),
            token_selector=copy.deepcopy(token_selector))
        self._build_layers(layer_cfgs, init_args)
        self.layer_cfgs = copy.deepcopy(layer_cfgs)

        total_tokens = self.pos_embed.shape[1]
        self.structured_cfg = _check_structured(structured, self.arch_settings['num_heads'],
                                                self.arch_settings['feedforward_channels'])
        self.selector_cfg = _check_selector(token_selector, total_tokens, self.num_extra_tokens,
                                            self.num_layers, self.out_type)
        if self.selector_cfg is not None:
            c = self.selector_cfg
            self.token_selector = TokenSelector(
                self.embed_dims,
                self.num_extra_tokens,
                num_tokens=c.get('num_tokens'),
                keep_ratio=c.get('keep_ratio'),
                train_drop=c['train_drop'],
                eval_noise=c['eval_noise'])
        else:
            self.token_selector = None
        if self.structured_cfg is not None:
            self._init_structured_masks()
        self._head_captures: Optional[List[HeadScoreCapture]] = None

    # ------------------------------------------------------------------ construction
    def _build_layers(self, layer_cfgs, kwargs) -> None:
        """Rebuild ``self.layers`` with :class:`SparseEncoderLayer`, mirroring the parent's args."""
        if isinstance(layer_cfgs, dict):
            layer_cfgs = [layer_cfgs] * self.num_layers
        if len(layer_cfgs) != self.num_layers:
            raise ValueError(f'`layer_cfgs` needs {self.num_layers} entries, got {len(layer_cfgs)}')
        dpr = np.linspace(0, kwargs.get('drop_path_rate', 0.), self.num_layers)
        self.layers = ModuleList()
        for i in range(self.num_layers):
            cfg = dict(
                embed_dims=self.embed_dims,
                num_heads=self.arch_settings['num_heads'],
                feedforward_channels=self.arch_settings['feedforward_channels'],
                layer_scale_init_value=kwargs.get('layer_scale_init_value', 0.),
                drop_rate=kwargs.get('drop_rate', 0.),
                drop_path_rate=dpr[i],
                qkv_bias=kwargs.get('qkv_bias', True),
                norm_cfg=kwargs.get('norm_cfg', dict(type='LN', eps=1e-6)))
            cfg.update(layer_cfgs[i])
            self.layers.append(SparseEncoderLayer(**cfg))

    def _init_structured_masks(self) -> None:
        cfg = self.structured_cfg
        gen = torch.Generator().manual_seed(cfg['seed'])
        for i, layer in enumerate(self.layers):
            H, F = layer.attn.num_heads, layer.fc1.out_features
            if cfg['heads_kept'] > H or cfg['neurons_kept'] > F:
                # only reachable with per-block shapes in layer_cfgs (a compact model)
                raise ValueError(f'`structured` keeps {cfg["heads_kept"]} heads / '
                                 f'{cfg["neurons_kept"]} neurons but block {i} has {H} / {F}')
            layer.attn.register_buffer('head_mask', sample_unit_mask(H, cfg['heads_kept'], gen))
            layer.register_buffer('neuron_mask', sample_unit_mask(F, cfg['neurons_kept'], gen))
        self.apply_structured_masks()
        # masks are re-applied after every load (mmpretrain checkpoints carry dense weights and no
        # mask buffers: the missing buffers keep their current values)
        self.register_load_state_dict_post_hook(_reapply_masks)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        if self.structured_cfg is not None:
            for i, layer in enumerate(self.layers):
                for key, buf in ((f'{prefix}layers.{i}.attn.head_mask', layer.attn.head_mask),
                                 (f'{prefix}layers.{i}.neuron_mask', layer.neuron_mask)):
                    state_dict.setdefault(key, buf.clone())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def init_weights(self):
        super().init_weights()
        if self.token_selector is not None:
            self.token_selector.init_weights()
        if self.structured_cfg is not None:
            self.apply_structured_masks()

    # ------------------------------------------------------------------ structured masks
    @property
    def structured(self) -> bool:
        return self.structured_cfg is not None

    @torch.no_grad()
    def apply_structured_masks(self) -> None:
        """Zero the qkv rows (+ bias) of inactive heads and fc1 rows / fc2 columns of inactive
        neurons. Call after every optimizer step and mask change (no masking in forward)."""
        if self.structured_cfg is None:
            return
        for layer in self.layers:
            apply_head_mask(layer.attn.qkv, layer.attn.head_mask, layer.attn.head_dims,
                            self.structured_cfg['mask_qkv_bias'])
            apply_neuron_mask(layer.fc1, layer.fc2, layer.neuron_mask)

    def head_masks(self) -> List[torch.Tensor]:
        """Per block (H,) bool head masks (the live buffers)."""
        return [layer.attn.head_mask for layer in self.layers]

    def neuron_masks(self) -> List[torch.Tensor]:
        """Per block (F,) bool MLP-neuron masks (the live buffers)."""
        return [layer.neuron_mask for layer in self.layers]

    def set_structured_masks(self, head_masks: List[torch.Tensor], neuron_masks: List[torch.Tensor]) -> None:
        """Replace all unit masks (counts must be unchanged) and zero the owned slices."""
        for layer, hm, nm in zip(self.layers, head_masks, neuron_masks):
            if hm.shape != layer.attn.head_mask.shape or nm.shape != layer.neuron_mask.shape:
                raise ValueError('structured masks must keep their shapes (H,) and (F,)')
            layer.attn.head_mask.copy_(hm.bool())
            layer.neuron_mask.copy_(nm.bool())
        self.apply_structured_masks()

    def structured_units(self) -> List[Dict]:
        """Per block: the modules a structured prune-and-grow step reads and writes."""
        return [
            dict(
                qkv=layer.attn.qkv,
                proj=layer.attn.proj,
                fc1=layer.fc1,
                fc2=layer.fc2,
                num_heads=layer.attn.num_heads,
                head_dims=layer.attn.head_dims,
                head_mask=getattr(layer.attn, 'head_mask', None),
                neuron_mask=getattr(layer, 'neuron_mask', None)) for layer in self.layers
        ]

    def head_score_captures(self) -> List[HeadScoreCapture]:
        """Per block :class:`HeadScoreCapture` on ``attn.proj`` (created once, disarmed)."""
        if self._head_captures is None:
            self._head_captures = [
                HeadScoreCapture(layer.attn.proj, layer.attn.num_heads, layer.attn.head_dims)
                for layer in self.layers
            ]
        return self._head_captures

    def infer_structured_masks(self) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Unit masks: the buffers if structured, else read off the weights (a head is active iff
        any of its q/k/v weight rows is non-zero; a neuron iff its fc1 row or fc2 column is)."""
        if self.structured_cfg is not None:
            return ([m.clone() for m in self.head_masks()], [m.clone() for m in self.neuron_masks()])
        heads, neurons = [], []
        for layer in self.layers:
            a = layer.attn
            rows = (a.qkv.weight != 0).any(1).view(3, a.num_heads, a.head_dims)
            heads.append(rows.any(2).any(0))
            neurons.append((layer.fc1.weight != 0).any(1) | (layer.fc2.weight != 0).any(0))
        return heads, neurons

    # ------------------------------------------------------------------ compact export
    @torch.no_grad()
    def export_compact(self) -> Tuple['SparseDeiT', dict]:
        """Physically remove inactive heads and neurons (docs/method/svite.md, 2.4).

        Returns:
            (compact backbone, its config dict). The config is this backbone's constructor
            arguments with ``structured`` dropped and per-block ``num_heads``,
            ``feedforward_channels`` and ``head_dims`` recorded in ``layer_cfgs``; the compact
            model's outputs equal the masked model's (eval).
        """
        head_masks, neuron_masks = self.infer_structured_masks()
        mask_bias = True if self.structured_cfg is None else self.structured_cfg['mask_qkv_bias']
        layer_cfgs = []
        base = self.layer_cfgs if isinstance(self.layer_cfgs, list) else [self.layer_cfgs] * len(self.layers)
        for layer, hm, nm, b in zip(self.layers, head_masks, neuron_masks, base):
            if not hm.any() or not nm.any():
                raise ValueError('a block with no active head or neuron cannot be exported')
            cfg = dict(b)
            cfg.update(
                num_heads=int(hm.sum()), feedforward_channels=int(nm.sum()), head_dims=layer.attn.head_dims)
            layer_cfgs.append(cfg)
        cfg = copy.deepcopy(self._init_args)
        cfg.pop('structured', None)
        cfg['init_cfg'] = None  # weights come with the exported checkpoint
        cfg['layer_cfgs'] = layer_cfgs
        cfg['type'] = f'mmsparse.{type(self).__name__}'
        compact = type(self)(**{k: v for k, v in cfg.items() if k != 'type'})
        compact.train(self.training)

        own = self.state_dict()
        new = compact.state_dict()
        for key in new:
            if key in own and own[key].shape == new[key].shape:
                new[key] = own[key].clone()
        for i, (layer, hm, nm) in enumerate(zip(self.layers, head_masks, neuron_masks)):
            a, pre = layer.attn, f'layers.{i}.'
            heads = hm.nonzero().flatten()
            rows = head_qkv_rows(heads, a.num_heads, a.head_dims)
            cols = head_proj_cols(heads, a.head_dims)
            new[pre + 'attn.qkv.weight'] = a.qkv.weight[rows].clone()
            if a.qkv.bias is not None:
                new[pre + 'attn.qkv.bias'] = a.qkv.bias[rows].clone()
            new[pre + 'attn.proj.weight'] = a.proj.weight[:, cols].clone()
            proj_bias = a.proj.bias.clone()
            if not mask_bias and a.qkv.bias is not None:
                # a removed head with its bias left outputs v_bias for every token (uniform
                # attention over equal values): fold W_proj[:, cols_h] v_bias_h into the proj bias
                dead = (~hm).nonzero().flatten()
                v_rows = head_qkv_rows(dead, a.num_heads, a.head_dims)[2 * dead.numel() * a.head_dims:]
                dead_cols = head_proj_cols(dead, a.head_dims)
                proj_bias += a.proj.weight[:, dead_cols] @ a.qkv.bias[v_rows]
            new[pre + 'attn.proj.bias'] = proj_bias
            keep = nm.nonzero().flatten()
            new[pre + 'ffn.layers.0.0.weight'] = layer.fc1.weight[keep].clone()
            new[pre + 'ffn.layers.0.0.bias'] = layer.fc1.bias[keep].clone()
            new[pre + 'ffn.layers.1.weight'] = layer.fc2.weight[:, keep].clone()
        compact.load_state_dict(new, strict=True)
        return compact, cfg

    # ------------------------------------------------------------------ forward
    def _extra_tokens(self, B: int) -> torch.Tensor:
        return self.cls_token.expand(B, -1, -1)

    def forward(self, x):
        B = x.shape[0]
        x, patch_resolution = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self._extra_tokens(B), x), dim=1)
        x = x + resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            patch_resolution,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)
        x = self.drop_after_pos(x)
        x = self.pre_norm(x)

        placement = -1 if self.token_selector is None else self.selector_cfg['placement']
        outs = []
        for i, layer in enumerate(self.layers):
            if i == placement:
                x = self.token_selector(x)
            x = layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)


@MODELS.register_module()
class SparseDistilledDeiT(SparseDeiT):
    """Distilled variant (class + distillation token), drop-in for ``DistilledVisionTransformer``.

    Both extra tokens are always kept by the token selector. Output with ``out_type='cls_token'``:
    tuple of (class-token (B, C), distillation-token (B, C)) pairs.
    """
    num_extra_tokens = 2

    def __init__(self, arch='deit-base', *args, **kwargs):
        kwargs['with_cls_token'] = True
        super().__init__(arch, *args, **kwargs)
        self.dist_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))

    def _extra_tokens(self, B: int) -> torch.Tensor:
        return torch.cat((self.cls_token.expand(B, -1, -1), self.dist_token.expand(B, -1, -1)), 1)

    def _format_output(self, x, hw):
        if self.out_type == 'cls_token':
            return x[:, 0], x[:, 1]
        return super()._format_output(x, hw)

    def init_weights(self):
        super().init_weights()
        if not (isinstance(self.init_cfg, dict) and self.init_cfg['type'] == 'Pretrained'):
            trunc_normal_(self.dist_token, std=0.02)

"""Building blocks of ``SparseDeiT``: attention with a free head count, encoder layer, token selector.

Parameter names and the forward arithmetic follow mmpretrain's ``MultiheadAttention`` and
``TransformerEncoderLayer`` exactly (``ln1``, ``attn.qkv``, ``attn.proj``, ``ln2``,
``ffn.layers.0.0``, ``ffn.layers.1``), so mmpretrain DeiT checkpoints load unchanged and a dense
``SparseDeiT`` is bit-identical to mmpretrain's ``VisionTransformer``. The one generalisation: the
number of heads times the head dim need not equal the embedding width, which is what a compact
S2ViTE export with pruned heads needs (per-block ``num_heads`` at head dim 64).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.drop import build_dropout
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerScale, build_norm_layer

from mmsparse.sparsity.token_selection import (gather_tokens, gumbel_noise, gumbel_topk_st,
                                               num_tokens_from_keep_ratio, topk_indices)

__all__ = ['HeadAttention', 'SparseEncoderLayer', 'TokenSelector']


class HeadAttention(BaseModule):
    """Multi-head self-attention whose inner width is ``num_heads * head_dims``.

    Args:
        embed_dims: C, width of input and output.
        num_heads: a, heads in this block (>= 1).
        head_dims: d; default ``embed_dims // num_heads`` (mmpretrain's choice).
        attn_drop, proj_drop, dropout_layer, qkv_bias, layer_scale_init_value: as in mmpretrain.

    Shapes: x (B, N, C) -> (B, N, C); qkv (3 a d, C), proj (C, a d).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 head_dims: Optional[int] = None,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 dropout_layer: dict = dict(type='Dropout', drop_prob=0.),
                 qkv_bias: bool = True,
                 layer_scale_init_value: float = 0.,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = head_dims or embed_dims // num_heads
        self.inner_dims = self.num_heads * self.head_dims
        self.qkv = nn.Linear(embed_dims, self.inner_dims * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(self.inner_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.out_drop = build_dropout(dropout_layer)
        if layer_scale_init_value > 0:
            self.gamma1 = LayerScale(embed_dims, layer_scale_init_value=layer_scale_init_value)
        else:
            self.gamma1 = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn_drop = self.attn_drop if self.training else 0.
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=attn_drop)
        x = x.transpose(1, 2).reshape(B, N, self.inner_dims)  # proj input = heads concatenated
        x = self.proj(x)
        return self.out_drop(self.gamma1(self.proj_drop(x)))


class SparseEncoderLayer(BaseModule):
    """Pre-norm ViT block: x + attn(ln1(x)), then x + ffn(ln2(x)); x (B, N, C) -> (B, N, C).

    Same arguments as mmpretrain's ``TransformerEncoderLayer`` plus ``head_dims``.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 head_dims: Optional[int] = None,
                 layer_scale_init_value: float = 0.,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 num_fcs: int = 2,
                 qkv_bias: bool = True,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.ln1 = build_norm_layer(norm_cfg, embed_dims)
        self.attn = HeadAttention(
            embed_dims=embed_dims,
            num_heads=num_heads,
            head_dims=head_dims,
            attn_drop=attn_drop_rate,
            proj_drop=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
            qkv_bias=qkv_bias,
            layer_scale_init_value=layer_scale_init_value)
        self.ln2 = build_norm_layer(norm_cfg, embed_dims)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            num_fcs=num_fcs,
            ffn_drop=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
            act_cfg=act_cfg,
            layer_scale_init_value=layer_scale_init_value)

    @property
    def fc1(self) -> nn.Linear:
        return self.ffn.layers[0][0]

    @property
    def fc2(self) -> nn.Linear:
        return self.ffn.layers[1]

    def init_weights(self):
        super().init_weights()
        # same init as mmpretrain's TransformerEncoderLayer
        for m in self.ffn.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return self.ffn(self.ln2(x), identity=x)


class TokenSelector(nn.Module):
    """SViTE+ learnable token selector: Linear(C, 1) scorer + Gumbel straight-through top-k.

    Args:
        embed_dims: C.
        num_extra_tokens: leading class (+ distillation) tokens, always kept, never scored.
        num_tokens: tokens leaving the selector (extra included); None -> use ``keep_ratio``.
        keep_ratio: kept fraction of all tokens (used when ``num_tokens`` is None).
        train_drop: 'remove' (gather the kept tokens, paper) or 'zero' (multiply, reference code).
        eval_noise: add Gumbel noise in eval too (reproduces the reference evaluation).

    ``tau`` (attribute) is the temperature, set every step by the training hook.
    Shapes: x (B, E + P, C) -> (B, num_tokens, C) (``zero`` mode in training: unchanged length).
    """

    def __init__(self,
                 embed_dims: int,
                 num_extra_tokens: int,
                 num_tokens: Optional[int] = None,
                 keep_ratio: Optional[float] = None,
                 train_drop: str = 'remove',
                 eval_noise: bool = False):
        super().__init__()
        self.scorer = nn.Linear(embed_dims, 1)
        self.num_extra_tokens = num_extra_tokens
        self.num_tokens = num_tokens
        self.keep_ratio = keep_ratio
        self.train_drop = train_drop
        self.eval_noise = eval_noise
        self.tau = 1.0
        self.noise: Optional[torch.Tensor] = None  # fixed Gumbel noise for tests / noiseless runs
        self.last_indices: Optional[torch.Tensor] = None  # (B, k) kept patch indices, for logging

    def init_weights(self):
        nn.init.trunc_normal_(self.scorer.weight, std=0.02)
        nn.init.zeros_(self.scorer.bias)

    def num_kept_patches(self, num_patches: int) -> int:
        if self.num_tokens is not None:
            return min(self.num_tokens - self.num_extra_tokens, num_patches)
        total = num_patches + self.num_extra_tokens
        return num_tokens_from_keep_ratio(self.keep_ratio, total,
                                          self.num_extra_tokens) - self.num_extra_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        E = self.num_extra_tokens
        extra, patches = x[:, :E], x[:, E:]
        k = self.num_kept_patches(patches.shape[1])
        scores = self.scorer(patches).squeeze(-1)  # (B, P)
        if self.training:
            noise = self.noise
            if noise is None:
                noise = gumbel_noise(scores.shape, device=scores.device)
            y, idx = gumbel_topk_st(scores, k, self.tau, noise=noise)
            self.last_indices = idx.detach()
            # forward values of y are exactly 0/1: kept tokens pass bit-unchanged, the scorer gets
            # the gradient of y_soft
            weighted = patches * y.unsqueeze(-1).to(patches.dtype)
            if self.train_drop == 'zero':
                return torch.cat([extra, weighted], dim=1)
            return torch.cat([extra, gather_tokens(weighted, idx)], dim=1)
        s = scores
        if self.eval_noise:
            s = torch.log_softmax(scores.float(), -1) + gumbel_noise(scores.shape, device=scores.device)
        idx = topk_indices(s, k)
        self.last_indices = idx
        return torch.cat([extra, gather_tokens(patches, idx)], dim=1)

"""Analytic MACs / parameter model for DeiT-style ViTs with weight, head/neuron and token sparsity.

docs/method/svite.md, 4. FLOPs here are multiply-accumulates (MACs), as in DeiT's 1.3 / 4.6 / 17.6 G. Dense
DeiT with C channels, L blocks, N tokens in the blocks, P patches of size p, K classes:

    P p^2 3 C + L (N 3C C + N C C + 2 N 4C C + 2 N^2 C) + K C

(patch conv; per block qkv, proj, fc1 + fc2, QK^T and AV; classifier).

- Unstructured weight sparsity multiplies each linear / conv term by its layer density; attention
  matmuls stay dense (same in both conventions: the zeros are where they are).
- Tokens: N inside the blocks becomes ``num_tokens``; the patch conv still sees all P patches; the
  selector scores the P patch tokens only (the extra tokens are always kept): P C.
- Structured, ``convention='real'`` (an exported compact model): qkv 3 a d outputs, proj a d inputs,
  attention matmuls at width a d, MLP hidden = kept neurons.
- Structured, ``convention='paper'``: qkv narrowed, proj kept C x C, attention matmuls at full width C
  (matches the paper's S2ViTE FLOPs / parameters within 0.3 pp).
"""
from typing import Dict, Optional, Sequence, Union

__all__ = ['DEIT_ARCHS', 'vit_cost', 'deit_cost', 'deit_masked_shapes', 'role_densities']

#: embed dims, depth, heads, MLP hidden of the DeiT family (head dim 64)
DEIT_ARCHS = {
    'deit-tiny': dict(embed_dims=192, num_layers=12, num_heads=3, feedforward_channels=768),
    'deit-small': dict(embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1536),
    'deit-base': dict(embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=3072),
}
_ROLES = ('patch', 'qkv', 'proj', 'fc1', 'fc2', 'classifier')
Number = Union[int, float]


def _per_layer(value, num_layers: int, field: str) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * num_layers
    if len(values) != num_layers:
        raise ValueError(f'`{field}` needs {num_layers} per-layer values, got {len(values)}')
    return values


def vit_cost(embed_dims: int,
             num_layers: int,
             num_heads: Union[int, Sequence[int]],
             feedforward_channels: Union[int, Sequence[int]],
             head_dim: int = 64,
             img_size: int = 224,
             patch_size: int = 16,
             in_channels: int = 3,
             num_classes: int = 1000,
             num_extra_tokens: int = 1,
             num_tokens: Optional[int] = None,
             weight_density: Optional[Dict[str, Number]] = None,
             convention: str = 'real',
             full_num_heads: Optional[int] = None) -> Dict[str, Number]:
    """MACs and parameters of one ViT configuration at one input size.

    Args:
        embed_dims: C.
        num_layers: L.
        num_heads: heads per block (int or L values); kept heads ``a`` for structured models.
        feedforward_channels: MLP hidden per block (int or L values); kept neurons when structured.
        head_dim: d (64 for DeiT).
        img_size, patch_size, in_channels: patch embedding geometry (square images).
        num_classes: classifier outputs (0: no classifier). With ``num_extra_tokens=2`` (distilled)
            two classifier heads are counted.
        num_extra_tokens: class (+ distillation) tokens.
        num_tokens: tokens entering the blocks when a token selector is on (extra tokens included);
            None: no selector, all P + extra tokens.
        weight_density: role -> density in (0, 1] for unstructured sparsity, roles
            'patch', 'qkv', 'proj', 'fc1', 'fc2', 'classifier' (missing roles are dense).
        convention: 'real' (compact export) or 'paper' (proj full C x C and attention at width C).
        full_num_heads: H of the dense model; the paper convention counts proj and attention
            matmuls at H d. Defaults to C // d.

    Returns:
        dict(macs, params, and the MAC terms 'patch', 'attn_linear', 'attn_matmul', 'mlp',
        'classifier', 'scorer'). Exact ints without ``weight_density``; floats with it (the
        density-weighted parameters are then the expected non-zeros).
    """
    if convention not in ('real', 'paper'):
        raise ValueError(f"`convention` must be 'real' or 'paper', got {convention!r}")
    dens = {r: 1 for r in _ROLES}
    for role, value in (weight_density or {}).items():
        if role not in dens:
            raise ValueError(f'`weight_density` roles are {_ROLES}, got {role!r}')
        if not 0 < value <= 1:
            raise ValueError(f'`weight_density[{role!r}]` must be in (0, 1], got {value!r}')
        dens[role] = value
    C = embed_dims
    heads = _per_layer(num_heads, num_layers, 'num_heads')
    hidden = _per_layer(feedforward_channels, num_layers, 'feedforward_channels')
    full_width = (full_num_heads or C // head_dim) * head_dim
    grid = img_size // patch_size
    P = grid * grid
    N_all = P + num_extra_tokens
    N = N_all if num_tokens is None else num_tokens
    if not num_extra_tokens < N <= N_all:
        raise ValueError(f'`num_tokens` must be in [{num_extra_tokens + 1}, {N_all}], got {N}')
    n_heads_out = 2 if num_extra_tokens == 2 else 1

    patch_w = C * in_channels * patch_size * patch_size
    macs = dict(
        patch=P * patch_w * dens['patch'],
        attn_linear=0,
        attn_matmul=0,
        mlp=0,
        classifier=n_heads_out * num_classes * C * dens['classifier'],
        scorer=P * C if num_tokens is not None else 0)
    params = patch_w * dens['patch'] + C + C * num_extra_tokens + N_all * C  # conv w+b, tokens, pos
    for a, F in zip(heads, hidden):
        width = a * head_dim
        proj_in = full_width if convention == 'paper' else width
        matmul_w = full_width if convention == 'paper' else width
        macs['attn_linear'] += N * 3 * width * C * dens['qkv'] + N * proj_in * C * dens['proj']
        macs['attn_matmul'] += 2 * N * N * matmul_w
        macs['mlp'] += N * F * C * (dens['fc1'] + dens['fc2'])
        params += (
            2 * C  # ln1
            + 3 * width * C * dens['qkv'] + 3 * width  # qkv w + b
            + proj_in * C * dens['proj'] + C  # proj w + b
            + 2 * C  # ln2
            + F * C * dens['fc1'] + F + F * C * dens['fc2'] + C)  # fc1, fc2
    params += 2 * C  # final norm
    if num_classes:
        params += n_heads_out * (num_classes * C * dens['classifier'] + num_classes)
    if num_tokens is not None:
        params += C + 1  # scorer Linear(C, 1)
    macs['macs'] = sum(macs[k]
                       for k in ('patch', 'attn_linear', 'attn_matmul', 'mlp', 'classifier', 'scorer'))
    macs['params'] = params
    return macs


def deit_cost(arch: str = 'deit-small',
              heads_kept: Union[None, int, Sequence[int]] = None,
              mlp_kept: Union[None, int, Sequence[int]] = None,
              weight_density: Optional[Dict[str, Number]] = None,
              num_tokens: Optional[int] = None,
              convention: str = 'real',
              distilled: bool = False,
              **kwargs) -> Dict[str, Number]:
    """:func:`vit_cost` for a named DeiT arch; ``heads_kept`` / ``mlp_kept`` default to dense."""
    if arch not in DEIT_ARCHS:
        raise ValueError(f'`arch` must be one of {sorted(DEIT_ARCHS)}, got {arch!r}')
    a = DEIT_ARCHS[arch]
    return vit_cost(
        embed_dims=a['embed_dims'],
        num_layers=a['num_layers'],
        num_heads=a['num_heads'] if heads_kept is None else heads_kept,
        feedforward_channels=a['feedforward_channels'] if mlp_kept is None else mlp_kept,
        num_extra_tokens=2 if distilled else 1,
        num_tokens=num_tokens,
        weight_density=weight_density,
        convention=convention,
        full_num_heads=a['num_heads'],
        **kwargs)


def deit_masked_shapes(arch: str = 'deit-small',
                       num_classes: int = 1000,
                       patch_size: int = 16,
                       in_channels: int = 3) -> Dict[str, tuple]:
    """Shapes of the SViTE-masked weights of a DeiT classifier, keyed by mmpretrain names.

    Patch conv, qkv / proj / fc1 / fc2 of every block and the classifier (docs/method/svite.md, 1.1 and 4).
    """
    a = DEIT_ARCHS[arch]
    C, F = a['embed_dims'], a['feedforward_channels']
    shapes = {'backbone.patch_embed.projection.weight': (C, in_channels, patch_size, patch_size)}
    for i in range(a['num_layers']):
        pre = f'backbone.layers.{i}.'
        shapes[pre + 'attn.qkv.weight'] = (3 * C, C)
        shapes[pre + 'attn.proj.weight'] = (C, C)
        shapes[pre + 'ffn.layers.0.0.weight'] = (F, C)
        shapes[pre + 'ffn.layers.1.weight'] = (C, F)
    shapes['head.layers.head.weight'] = (num_classes, C)
    return shapes


def role_densities(densities: Dict[str, float]) -> Dict[str, float]:
    """Per-parameter densities (names as in :func:`deit_masked_shapes`) -> per-role densities.

    Every block has the same shapes, so ERK gives every block the same densities; block 0 speaks
    for all. Roles: 'patch', 'qkv', 'proj', 'fc1', 'fc2', 'classifier'.
    """
    suffix = {
        'patch': 'patch_embed.projection.weight',
        'qkv': 'layers.0.attn.qkv.weight',
        'proj': 'layers.0.attn.proj.weight',
        'fc1': 'layers.0.ffn.layers.0.0.weight',
        'fc2': 'layers.0.ffn.layers.1.weight',
        'classifier': 'head.layers.head.weight'
    }
    out = {}
    for role, end in suffix.items():
        hits = [v for k, v in densities.items() if k.endswith(end)]
        if hits:
            out[role] = hits[0]
    return out

"""One mmdet ``SwinBlock`` applied to a batch of gathered windows (docs/method/sparsevit.md, 2.5).

These functions reuse the block's own modules (``norm1``, ``attn.w_msa``, ``attn.drop``, ``norm2``,
``ffn``), so a SparseSwin keeps mmdet's parameters and state_dict keys. Shapes use
``N = window_size**2`` tokens per window, ``n = B * k`` gathered windows.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    'relative_position_bias', 'window_attention', 'block_on_windows', 'pad_fill_value',
    'dense_block_inference'
]


def relative_position_bias(w_msa: nn.Module, cache: Optional[dict] = None) -> torch.Tensor:
    """The block's relative-position bias ``(heads, N, N)``, gathered from its table.

    With ``cache`` (a dict) and no gradient needed, the gathered bias is reused until the table's data
    or version changes (an optimizer step or a checkpoint load bumps the version). Under
    ``torch.compile`` / ``torch.export`` the cache is bypassed: its key (object id, data pointer,
    version counter) is Python state that the compiler would guard on, or cannot read at all, and the
    gather of a ``(2ws-1)**2``-row table is one small kernel in the compiled graph.
    """
    table = w_msa.relative_position_bias_table
    use_cache = (
        cache is not None and not (torch.is_grad_enabled() and table.requires_grad)
        and not torch.compiler.is_compiling())
    if use_cache:
        key = (id(w_msa), table.data_ptr(), table._version, table.dtype, table.device)
        hit = cache.get(key)
        if hit is not None:
            return hit
    n = w_msa.window_size[0] * w_msa.window_size[1]
    bias = table[w_msa.relative_position_index.view(-1)].view(n, n, -1)
    bias = bias.permute(2, 0, 1).contiguous()
    if use_cache:
        # one entry per block: drop stale versions of this block's bias
        for old in [k for k in cache if k[0] == id(w_msa)]:
            del cache[old]
        cache[key] = bias.detach()
    return bias


def window_attention(w_msa: nn.Module,
                     x: torch.Tensor,
                     bias: torch.Tensor,
                     mask: Optional[torch.Tensor] = None,
                     fused: bool = False) -> torch.Tensor:
    """(S)W-MSA inside each window, with mmdet ``WindowMSA``'s op order.

    Args:
        w_msa: mmdet ``WindowMSA`` (its qkv, proj, dropouts and scale are used).
        x: ``(n, N, C)`` normalised tokens of ``n`` windows.
        bias: ``(heads, N, N)`` relative-position bias.
        mask: ``(n, N, N)`` SW-MSA mask of each window (0 / -100), or ``None`` for regular windows.
        fused: use ``F.scaled_dot_product_attention`` (inference only: no attention dropout, no
            gradient). It keeps each window's 49x49 scores in cache instead of writing them to memory
            for the bias, mask and softmax passes; results differ from the op-by-op path by float
            rounding only.

    Returns:
        ``(n, N, C)`` projected attention output (before DropPath and the residual).
    """
    n, num_tokens, c = x.shape
    heads = w_msa.num_heads
    qkv = w_msa.qkv(x).reshape(n, num_tokens, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if fused:
        # a stride-0 expanded bias keeps SDPA on its fused CPU kernel; a (heads, N, N) one does not
        attn_bias = (bias.unsqueeze(0).expand(n, -1, -1, -1) if mask is None else bias.unsqueeze(0) +
                     mask.unsqueeze(1)).to(q.dtype)  # autocast: match q
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, scale=w_msa.scale)
        out = out.transpose(1, 2).reshape(n, num_tokens, c)
        return w_msa.proj_drop(w_msa.proj(out))
    q = q * w_msa.scale
    attn = q @ k.transpose(-2, -1)
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        attn = attn + mask.unsqueeze(1)
    attn = attn.softmax(dim=-1)
    attn = w_msa.attn_drop(attn)
    out = (attn @ v).transpose(1, 2).reshape(n, num_tokens, c)
    return w_msa.proj_drop(w_msa.proj(out))


def block_on_windows(block: nn.Module,
                     xs: torch.Tensor,
                     batch: int,
                     bias: torch.Tensor,
                     mask: Optional[torch.Tensor] = None,
                     valid: Optional[torch.Tensor] = None,
                     pad_fill: Optional[torch.Tensor] = None,
                     fused: bool = False) -> torch.Tensor:
    """A whole Swin block (LN, (S)W-MSA, residual, LN, FFN, residual) on gathered windows.

    Args:
        block: mmdet ``SwinBlock``.
        xs: ``(B * k * N, C)`` residual-stream tokens of the kept windows, ``k`` windows per image.
        batch: ``B``; DropPath draws one keep/drop per image, as in the dense block.
        bias: ``(heads, N, N)`` relative-position bias.
        mask: ``(B * k, N, N)`` gathered SW-MSA mask, or ``None``.
        valid: ``(B * k * N, 1)`` bool, False at padded tokens; ``None`` when nothing pads.
        pad_fill: value of padded tokens at the qkv input: 0 (``pad_mode='dense'``, as in dense Swin,
            which pads after norm1) or ``norm1(0)`` (``pad_mode='reference'``).
        fused: fused attention kernel, see :func:`window_attention`.

    Returns:
        ``(B * k * N, C)`` block output for the kept windows.
    """
    c = xs.shape[-1]
    num_tokens = bias.shape[-1]
    y = block.norm1(xs)
    if valid is not None:
        y = torch.where(valid, y, pad_fill)
    a = window_attention(block.attn.w_msa, y.view(-1, num_tokens, c), bias, mask, fused)
    a = block.attn.drop(a.view(batch, -1, c)).view(-1, c)
    y = a + xs  # mmdet: attn(x) + identity
    z = block.ffn(block.norm2(y).view(batch, -1, c), identity=y.view(batch, -1, c))
    return z.view(-1, c)


def pad_fill_value(block: nn.Module, pad_mode: str, like: torch.Tensor) -> torch.Tensor:
    """``(C,)`` value of padded tokens after norm1: 0 (dense Swin) or ``norm1(0)`` (the reference)."""
    if pad_mode == 'dense':
        return like.new_zeros(())
    # LN of a zero vector is exactly its bias; going through the module keeps any norm type right
    return block.norm1(like.new_zeros(1, like.shape[-1]))[0]


def dense_block_inference(block: nn.Module,
                          x: torch.Tensor,
                          hw_shape,
                          bias: torch.Tensor,
                          mask: Optional[torch.Tensor],
                          fused: bool = False) -> torch.Tensor:
    """mmdet ``SwinBlock.forward`` without gradient, with the geometry constants precomputed.

    The arithmetic is mmdet's, op for op and in the same memory layouts, so the result is bit-identical;
    only work that produces no new numbers is skipped: building the SW-MSA mask (``mask``, cached by
    the caller), gathering the relative-position bias (``bias``, cached) and a zero-width ``F.pad``.

    Args:
        x: ``(B, H * W, C)``; mask: ``(nW, N, N)`` for shifted blocks, else ``None``.
        fused: compute the attention with ``F.scaled_dot_product_attention`` as the window path does
            (:func:`window_attention`): no longer bit-identical to mmdet (float rounding, ~1e-6), and
            faster, most of all in shifted blocks, where the op-by-op form writes and rereads the
            scores for the mask (docs/benchmark.md).
    """
    b, length, c = x.shape
    h, w = hw_shape
    msa = block.attn
    ws, shift = msa.window_size, msa.shift_size
    identity = x
    q = block.norm1(x).view(b, h, w, c)
    pad_r, pad_b = (ws - w % ws) % ws, (ws - h % ws) % ws
    if pad_r or pad_b:
        q = F.pad(q, (0, 0, 0, pad_r, 0, pad_b))
    hp, wp = q.shape[1], q.shape[2]
    if shift > 0:
        q = torch.roll(q, shifts=(-shift, -shift), dims=(1, 2))
    windows = q.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).contiguous()
    windows = windows.view(-1, ws * ws, c)
    if fused:
        # the mask is per window of one image: the windows of every image in the batch take it in turn
        out = window_attention(msa.w_msa, windows, bias,
                               mask if mask is None or b == 1 else mask.repeat(b, 1, 1), True)
    else:
        out = _mmdet_window_msa(msa.w_msa, windows, bias, mask)
    # back to the (cropped, unshifted) map, as in ShiftWindowMSA.forward
    out = out.view(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).contiguous()
    out = out.view(b, hp, wp, -1)
    if shift > 0:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    if pad_r > 0 or pad_b:
        out = out[:, :h, :w, :].contiguous()
    out = msa.drop(out.view(b, h * w, c))
    x = out + identity
    return block.ffn(block.norm2(x), identity=x)


def _mmdet_window_msa(w_msa: nn.Module, windows: torch.Tensor, bias: torch.Tensor,
                      mask: Optional[torch.Tensor]) -> torch.Tensor:
    """mmdet ``WindowMSA.forward`` op for op, with the cached bias and ``(nW, N, N)`` mask.

    Args:
        windows: ``(B * nW, N, C)`` tokens of every window of ``B`` images.

    Returns:
        ``(B * nW, N, C)`` projected attention output.
    """
    n, num_tokens, c = windows.shape
    qkv = w_msa.qkv(windows).reshape(n, num_tokens, 3, w_msa.num_heads,
                                     c // w_msa.num_heads).permute(2, 0, 3, 1, 4)
    qq, kk, vv = qkv[0], qkv[1], qkv[2]
    qq = qq * w_msa.scale
    attn = qq @ kk.transpose(-2, -1)
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        attn = attn.view(n // nw, nw, w_msa.num_heads, num_tokens,
                         num_tokens) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, w_msa.num_heads, num_tokens, num_tokens)
    attn = w_msa.attn_drop(w_msa.softmax(attn))
    out = (attn @ vv).transpose(1, 2).reshape(n, num_tokens, c)
    return w_msa.proj_drop(w_msa.proj(out))

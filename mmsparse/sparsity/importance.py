"""Importance scores and the structured units of a ViT block (docs/method/svite.md, 1.4 and 2).

Units and the tensor slices they own (head dim ``d``, ``H`` heads, qkv rows laid out
``[q heads..., k heads..., v heads...]``):

- head h: qkv rows ``[h d, (h+1) d)`` + {0, H d, 2 H d}, qkv bias entries at the same rows, attention
  proj input columns ``[h d, (h+1) d)``;
- MLP neuron j: fc1 row j (+ fc1 bias j), fc2 column j.

Scores (all fp32):

- weight magnitude |w| (unstructured prune), gradient magnitude |g| (unstructured grow);
- first-order Taylor per head S_h = 1/B sum_b |sum_{n,c} A G| and growth R_h = 1/B sum_b sum |G|,
  A = per-head attention output (B, N, H, d), G = dL/dA;
- MLP neuron L1 M_j = |W1[j,:]|_1 + |W2[:,j]|_1 and growth g_j from the same norms of the gradients.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

__all__ = [
    'weight_magnitude', 'gradient_magnitude', 'head_taylor_scores', 'head_gradient_scores',
    'neuron_l1_scores', 'neuron_gradient_scores', 'head_qkv_rows', 'head_row_mask', 'head_proj_cols',
    'apply_head_mask', 'apply_neuron_mask', 'HeadScoreCapture'
]


def weight_magnitude(weight: torch.Tensor) -> torch.Tensor:
    """|w| in fp32, same shape (prune score of unstructured SViTE)."""
    return weight.detach().float().abs()


def gradient_magnitude(grad: torch.Tensor) -> torch.Tensor:
    """|dL/dw| in fp32, same shape (growth score of unstructured SViTE)."""
    return grad.detach().float().abs()


def head_taylor_scores(attn_out: torch.Tensor, grad: torch.Tensor, reduce: str = 'mean') -> torch.Tensor:
    """First-order Taylor head importance S_h.

    Args:
        attn_out: A, (B, N, H, d) per-head attention output (input of proj, reshaped).
        grad: G = dL/dA, same shape.
        reduce: 'mean' (divide by B, the score) or 'sum' (per-rank sums for an all-reduce).

    Returns:
        (H,) fp32.
    """
    per_sample = (attn_out.float() * grad.float()).sum(dim=(1, 3)).abs()  # (B, H)
    return per_sample.mean(0) if reduce == 'mean' else per_sample.sum(0)


def head_gradient_scores(grad: torch.Tensor, reduce: str = 'mean') -> torch.Tensor:
    """Head growth score R_h = 1/B sum_b sum_{n,c} |G[b,n,h,c]|; grad (B, N, H, d) -> (H,) fp32."""
    per_sample = grad.float().abs().sum(dim=(1, 3))  # (B, H)
    return per_sample.mean(0) if reduce == 'mean' else per_sample.sum(0)


def neuron_l1_scores(fc1_weight: torch.Tensor, fc2_weight: torch.Tensor) -> torch.Tensor:
    """M_j = |W1[j, :]|_1 + |W2[:, j]|_1; fc1 (F, C), fc2 (C, F) -> (F,) fp32."""
    return fc1_weight.detach().float().abs().sum(1) + fc2_weight.detach().float().abs().sum(0)


def neuron_gradient_scores(fc1_grad: torch.Tensor, fc2_grad: torch.Tensor) -> torch.Tensor:
    """g_j = |dL/dW1[j, :]|_1 + |dL/dW2[:, j]|_1; (F, C), (C, F) -> (F,) fp32."""
    return neuron_l1_scores(fc1_grad, fc2_grad)


def head_qkv_rows(heads: torch.Tensor, num_heads: int, head_dim: int) -> torch.Tensor:
    """qkv row indices owned by ``heads`` (int64 (a,), any order), ordered q-block, k, v.

    Returns:
        int64 (3 a d,): for each of q, k, v the rows of the given heads in the given order; this is
        exactly the row order of a compact qkv that keeps those heads.
    """
    heads = heads.long().flatten()
    offs = torch.arange(head_dim, device=heads.device)
    per_head = (heads[:, None] * head_dim + offs[None, :]).flatten()  # (a d,)
    width = num_heads * head_dim
    return torch.cat([per_head + i * width for i in range(3)])


def head_row_mask(head_mask: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(H,) bool head mask -> (3 H d,) bool qkv row mask."""
    return head_mask.bool().repeat_interleave(head_dim).repeat(3)


def head_proj_cols(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    """proj input-column indices owned by ``heads`` (int64 (a,)) -> int64 (a d,)."""
    heads = heads.long().flatten()
    return (heads[:, None] * head_dim + torch.arange(head_dim, device=heads.device)).flatten()


@torch.no_grad()
def apply_head_mask(qkv: nn.Linear,
                    head_mask: torch.Tensor,
                    head_dim: int,
                    mask_qkv_bias: bool = True) -> None:
    """Zero the qkv rows (and with ``mask_qkv_bias`` the bias entries) of inactive heads."""
    rows = head_row_mask(head_mask, head_dim).to(qkv.weight.device)
    qkv.weight.masked_fill_(~rows[:, None], 0)
    if mask_qkv_bias and qkv.bias is not None:
        qkv.bias.masked_fill_(~rows, 0)


@torch.no_grad()
def apply_neuron_mask(fc1: nn.Linear, fc2: nn.Linear, neuron_mask: torch.Tensor) -> None:
    """Zero fc1 row j and fc2 column j of every inactive neuron (the fc1 bias is left alone)."""
    keep = neuron_mask.bool().to(fc1.weight.device)
    fc1.weight.masked_fill_(~keep[:, None], 0)
    fc2.weight.masked_fill_(~keep[None, :], 0)


class HeadScoreCapture:
    """Accumulate S_h and R_h of one attention block from its proj input, only while armed.

    A forward-pre-hook on ``proj`` sees A (B, N, H d); a tensor hook on it sees G in backward. Only
    the (H,) sums and the sample count are kept (fp32); activations are released at once.

    Args:
        proj: the attention output projection (its input is the concatenated head outputs).
        num_heads, head_dim: layout of that input.
    """

    def __init__(self, proj: nn.Linear, num_heads: int, head_dim: int):
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.armed = False
        self.reset()
        self._handle = proj.register_forward_pre_hook(self._pre_hook)

    def reset(self) -> None:
        self.taylor_sum: Optional[torch.Tensor] = None
        self.grad_sum: Optional[torch.Tensor] = None
        self.count = 0

    def _pre_hook(self, module, args):
        if not (self.armed and torch.is_grad_enabled()):
            return None
        x = args[0]
        if not x.requires_grad:
            return None
        act = x.detach()

        def on_grad(g: torch.Tensor) -> None:
            B, N = g.shape[0], g.shape[1]
            a = act.reshape(B, N, self.num_heads, self.head_dim)
            gg = g.reshape(B, N, self.num_heads, self.head_dim)
            s = head_taylor_scores(a, gg, reduce='sum')
            r = head_gradient_scores(gg, reduce='sum')
            self.taylor_sum = s if self.taylor_sum is None else self.taylor_sum + s
            self.grad_sum = r if self.grad_sum is None else self.grad_sum + r
            self.count += B

        x.register_hook(on_grad)
        return None

    def scores(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(S, R), each (H,) fp32 means over the captured samples."""
        if self.count == 0:
            raise RuntimeError('no head scores captured: arm the capture before forward/backward')
        return self.taylor_sum / self.count, self.grad_sum / self.count

    def remove(self) -> None:
        self._handle.remove()

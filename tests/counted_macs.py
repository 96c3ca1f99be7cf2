"""MACs counted on the modules that actually run (torch's FlopCounterMode), the reference the analytic
counts of ``mmsparse.sparsity.cost`` are checked against, and the one documented gap between the two
(docs/method/sparsevit.md, 4)."""
import torch

from mmsparse.sparsity.flop_count import count_macs
from mmsparse.sparsity.window_selection import first_pruned_block, stage_geometry, stage_hw


def counted_macs(module, *inputs):
    """Multiply-adds FlopCounterMode counts in ``module(*inputs)``, in eval mode without gradients."""
    module.eval()
    with torch.no_grad():
        return count_macs(lambda: module(*inputs))


def dense_path_padded_ffn_macs(shape, block_ratios, embed_dims, window_size=7, mlp_ratio=4):
    """FFN MACs, per image, of the padded tokens of the Swin blocks that run on the dense path.

    The analytic count runs every block over whole padded windows. A block before its stage's first
    pruned block (every block of a stage whose ratios are all 0) runs mmdet's own arithmetic, which
    applies the FFN to the unpadded map only, so FlopCounterMode counts this much less at an input
    whose stage maps pad.

    Args:
        shape: input ``(H, W)`` in pixels (patch size 4).
        block_ratios: per-stage, per-block ratios (``get_pruning_ratios()``); all zeros for a dense Swin.
        embed_dims: channels of stage 0 (doubled at every stage).
    """
    macs = 0
    for s, stage_ratios in enumerate(block_ratios):
        h, w = stage_hw(shape, s)
        geo = stage_geometry(h, w, window_size)
        dense_blocks = first_pruned_block(stage_ratios)
        dense_blocks = len(stage_ratios) if dense_blocks is None else dense_blocks
        channels = embed_dims * 2**s
        padded_tokens = geo.padded_height * geo.padded_width - h * w
        macs += dense_blocks * padded_tokens * 2 * mlp_ratio * channels**2
    return macs

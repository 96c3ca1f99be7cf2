# SparseSwin-T: the Swin-T architecture (embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7) with
# SparseViT window activation pruning. For task recipes whose own backbone is not mmdet's Swin (ResNet in
# mmdet3d's PGD, mmpretrain's Swin with other argument names): they replace it with
#   _base_ = ['<recipe>', '../_base_/models/sparse_swin_t.py']
#   model = dict(backbone=dict(_base_.sparse_swin_t, _delete_=True, <what the task changes>))
# Recipes that already use mmdet's or mmseg's Swin-T (Mask R-CNN, UPerNet) only swap the backbone type.
# Arguments not named here keep mmdet's SwinTransformer defaults (out_indices (0, 1, 2, 3), no weights).
sparse_swin_t = dict(
    type='mmsparse.SparseSwin',
    embed_dims=96,
    depths=[2, 2, 6, 2],
    num_heads=[3, 6, 12, 24],
    window_size=7,
    mlp_ratio=4,
    qkv_bias=True,
    drop_path_rate=0.2,
    # None = dense; a name of mmsparse.sparsity.ratios.PUBLISHED_RATIOS ('cfg1', 'cfg2', 'cfg3',
    # 'uniform-0.5'); or 4 per-stage lists of per-block window ratios in [0, 1)
    pruning_ratios=None,
    # SDPA or op-by-op window attention, whichever this machine runs faster (measured once, cached)
    fused_attention='auto')

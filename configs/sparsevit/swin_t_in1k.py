# SparseViT on ImageNet-1k classification: mmpretrain's Swin-T recipe with the backbone replaced by
# SparseSwin (same weights layout: mmpretrain Swin-T classifier checkpoints load unchanged).
#   python tools/train.py configs/sparsevit/swin_t_in1k.py
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)
data_hint = ('download ImageNet-1k (ILSVRC2012 train/val) and lay it out as data/imagenet/{train,val} '
             'with meta/{train,val}.txt (mmpretrain ImageNet format)')

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsparse.SparseSwin',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.2,
        out_indices=(3, ),
        pruning_ratios=None))

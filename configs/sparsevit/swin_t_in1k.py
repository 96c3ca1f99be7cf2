# SparseViT on ImageNet-1k classification: mmpretrain's Swin-T recipe with the backbone replaced by
# SparseSwin-T (same weights layout: mmpretrain Swin-T classifier checkpoints load unchanged; its
# constructor arguments differ from mmpretrain's Swin, hence the whole backbone is replaced).
#   python tools/train.py configs/sparsevit/swin_t_in1k.py
_base_ = ['mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py', '../_base_/models/sparse_swin_t.py']

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)
data_hint = ('download ImageNet-1k (ILSVRC2012 train/val) and lay it out as data/imagenet/{train,val} '
             'with meta/{train,val}.txt (mmpretrain ImageNet format)')

# the classifier head reads the last stage only
model = dict(backbone=dict(_base_.sparse_swin_t, _delete_=True, out_indices=(3, )))

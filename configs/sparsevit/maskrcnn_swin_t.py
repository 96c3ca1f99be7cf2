# SparseViT, instance segmentation: Mask R-CNN + FPN with a SparseSwin-T backbone on COCO.
# The dense starting point: mmdet's Swin-T 3x multi-scale-crop recipe; the only change is the backbone
# type (same hyper-parameters and state_dict keys, so mmdet Swin checkpoints load unchanged) and the
# paper's evaluation resolution (val2017 squashed to 672x672, padded to /32).
#   python tools/train.py configs/sparsevit/maskrcnn_swin_t.py
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)
data_hint = ('download COCO 2017 (train2017.zip, val2017.zip, annotations_trainval2017.zip) from '
             'cocodataset.org and unpack them into data/coco/ as train2017/, val2017/, annotations/')

# pruning_ratios: None = dense; a name of mmsparse.sparsity.ratios.PUBLISHED_RATIOS (cfg1, cfg2, cfg3,
# uniform-0.5); or 4 per-stage lists of per-block window ratios in [0, 1)
# fused_attention='auto': SDPA or op-by-op window attention, whichever this machine runs faster
model = dict(backbone=dict(type='mmsparse.SparseSwin', pruning_ratios=None, fused_attention='auto'))

test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(672, 672), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

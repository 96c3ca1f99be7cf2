# SparseViT step 2 on COCO: sparsity-aware adaptation with the reference's schedule (paper section 3.2;
# docs/method/sparsevit.md, 3.1).
# Starts from mmdet's dense Swin-T Mask R-CNN (fp16, multi-scale crop, 3x); every iteration trains under a
# random per-pair window-pruning configuration; validation runs dense.
#   python tools/train.py configs/sparsevit/maskrcnn_swin_t_saa.py [--amp]   (8 GPUs x 2 images)
_base_ = './maskrcnn_swin_t.py'

load_from = ('https://download.openmmlab.com/mmdetection/v2.0/swin/'
             'mask_rcnn_swin-t-p4-w7_fpn_fp16_ms-crop-3x_coco/'
             'mask_rcnn_swin-t-p4-w7_fpn_fp16_ms-crop-3x_coco_20210908_165006-90a4008c.pth')
model = dict(backbone=dict(init_cfg=None))  # weights come from load_from

# the hook's defaults: a random ratio set from {0, 0.1, ..., 0.8} every iteration, dense validation
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
# AdamW lr 1e-5, wd 0.05, no decay on norms / position tables (inherited paramwise_cfg);
# the reference trains in fp16 with a static loss scale of 512 (use --amp, or AmpOptimWrapper here)
optim_wrapper = dict(optimizer=dict(lr=1e-5))

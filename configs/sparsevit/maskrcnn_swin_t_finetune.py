# SparseViT step 4 on COCO: fine-tune the SAA model with fixed ratios (reference, as fixed in April 2024:
# 36 epochs, AdamW lr 1e-5, warm-up 1000 iterations, x0.1 at epochs 27 and 33, SAA augmentation, fp16).
# tools/search.py writes a finetune_*.py inheriting this file with the ratios it found; the published
# ratio sets are maskrcnn_swin_t_cfg{1,2,3}_finetune.py.
_base_ = './maskrcnn_swin_t.py'

load_from = 'work_dirs/maskrcnn_swin_t_saa/epoch_12.pth'  # the SAA model
model = dict(backbone=dict(init_cfg=None))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=1e-5))

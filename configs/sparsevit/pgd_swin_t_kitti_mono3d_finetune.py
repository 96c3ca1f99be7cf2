# SparseViT step 4 on KITTI mono-3D: fine-tune the SAA model with fixed searched ratios.
#   python tools/train.py configs/sparsevit/pgd_swin_t_kitti_mono3d_finetune.py
# The search writes a finetune_*.py that inherits this file with its ratios. The ratios below are a
# placeholder (the reference's COCO cfg2 pattern); the paper publishes no searched 3D ratios.
_base_ = './pgd_swin_t_kitti_mono3d.py'

load_from = 'work_dirs/pgd_swin_t_kitti_mono3d_saa/epoch_16.pth'  # the SAA model
model = dict(backbone=dict(init_cfg=None, pruning_ratios='cfg2'))
max_epochs = 16
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[11, 15], gamma=0.1)
]

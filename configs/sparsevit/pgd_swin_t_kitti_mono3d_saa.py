# SparseViT step 2 on KITTI mono-3D: sparsity-aware adaptation of the dense PGD SparseSwin-T.
# Every iteration trains under a random layer-wise window-pruning configuration; validation is dense.
#   python tools/train.py configs/sparsevit/pgd_swin_t_kitti_mono3d_saa.py
# The paper gives its SAA schedule for COCO only (12 epochs after a 36-epoch dense model, lr / 10);
# this keeps those proportions for the 48-epoch PGD-KITTI recipe: 16 epochs at lr 1e-5.
_base_ = './pgd_swin_t_kitti_mono3d.py'

load_from = 'work_dirs/pgd_swin_t_kitti_mono3d/epoch_48.pth'  # the dense model
model = dict(backbone=dict(init_cfg=None))  # weights come from load_from

# the hook's defaults: a random ratio set from {0, 0.1, ..., 0.8} every iteration, dense validation
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]
max_epochs = 16
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[11, 15], gamma=0.1)
]

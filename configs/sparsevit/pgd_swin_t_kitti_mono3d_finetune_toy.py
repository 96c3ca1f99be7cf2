# Toy variant of pgd_swin_t_kitti_mono3d_finetune.py: fine-tune the SAA toy model with fixed ratios
# (the search writes a finetune_*.py inheriting this file with the ratios it found).
#   python tools/train.py configs/sparsevit/pgd_swin_t_kitti_mono3d_finetune_toy.py
_base_ = './pgd_swin_t_kitti_mono3d_toy.py'

load_from = 'work_dirs/pgd_swin_t_kitti_mono3d_saa_toy/iter_80.pth'  # the SAA toy model
model = dict(backbone=dict(pruning_ratios='cfg2'))
max_iters = 80  # the dense model's longer schedule fits the demo's 15 minutes with 80 here
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=5e-5))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[64], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))

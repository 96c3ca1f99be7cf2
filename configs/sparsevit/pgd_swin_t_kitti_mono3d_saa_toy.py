# Toy variant of pgd_swin_t_kitti_mono3d_saa.py: sparsity-aware adaptation of the toy PGD model.
# The toy configs chain dense -> SAA -> search -> fine-tune on the generated data, so each inherits
# the dense toy config and adds the same change as its full counterpart.
#   python tools/train.py configs/sparsevit/pgd_swin_t_kitti_mono3d_saa_toy.py
_base_ = './pgd_swin_t_kitti_mono3d_toy.py'

load_from = 'work_dirs/pgd_swin_t_kitti_mono3d_toy/iter_560.pth'  # the dense toy model
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]
max_iters = 80  # the dense model's longer schedule fits the demo's 15 minutes with 80 here
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=5e-5))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[64], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))

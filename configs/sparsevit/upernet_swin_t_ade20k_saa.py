# SparseViT step 2 on ADE20K: sparsity-aware adaptation (SAA) of the dense UPerNet SparseSwin-T.
# Every iteration trains under a random layer-wise window-pruning configuration (ratios 0..0.8 per
# Swin block pair, non-decreasing within a stage); validation runs dense.
#   python tools/train.py configs/sparsevit/upernet_swin_t_ade20k_saa.py
# The paper gives its SAA schedule for COCO only (12 epochs after a 36-epoch dense model, lr / 10);
# this keeps those proportions for mmseg's 160k recipe: 40k iterations at lr 6e-6 from the dense model.
_base_ = './upernet_swin_t_ade20k.py'

load_from = 'work_dirs/upernet_swin_t_ade20k/iter_160000.pth'  # the dense model
model = dict(backbone=dict(init_cfg=None))  # weights come from load_from

# the hook's defaults: a random ratio set from {0, 0.1, ..., 0.8} every iteration, dense validation
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]

max_iters = 40000
train_cfg = dict(max_iters=max_iters, val_interval=8000)
optim_wrapper = dict(optimizer=dict(lr=6e-6))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1000, end=max_iters, by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=8000))

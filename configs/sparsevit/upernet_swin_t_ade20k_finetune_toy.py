# Toy variant of upernet_swin_t_ade20k_finetune.py: fine-tune the SAA toy model with fixed ratios
# (the search writes a finetune_*.py inheriting this file with the ratios it found).
#   python tools/train.py configs/sparsevit/upernet_swin_t_ade20k_finetune_toy.py
_base_ = './upernet_swin_t_ade20k_toy.py'

load_from = 'work_dirs/upernet_swin_t_ade20k_saa_toy/iter_100.pth'  # the SAA toy model
model = dict(backbone=dict(pruning_ratios='cfg2'))
max_iters = 100
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=max_iters))

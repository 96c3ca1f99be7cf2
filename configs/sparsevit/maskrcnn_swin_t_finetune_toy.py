# Toy fine-tune with fixed ratios (the search's finetune_*.py inherits this with the ratios it found).
_base_ = './maskrcnn_swin_t_toy.py'

load_from = 'work_dirs/maskrcnn_swin_t_saa_toy/iter_60.pth'
model = dict(backbone=dict(pruning_ratios='cfg2'))
max_iters = 40
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20)]
optim_wrapper = dict(optimizer=dict(lr=1e-4))
default_hooks = dict(checkpoint=dict(interval=max_iters))

# Toy fine-tune of the classifier with fixed ratios (the search's finetune_*.py inherits this).
_base_ = './swin_t_in1k_toy.py'

load_from = 'work_dirs/swin_t_in1k_saa_toy/iter_80.pth'
model = dict(backbone=dict(pruning_ratios='cfg2'))
max_iters = 60
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
default_hooks = dict(checkpoint=dict(interval=max_iters))

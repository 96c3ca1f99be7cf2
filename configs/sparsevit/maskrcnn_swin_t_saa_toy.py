# Toy SAA: maskrcnn_swin_t_toy.py plus the sparsity-aware adaptation hook; load_from = the dense toy model.
_base_ = './maskrcnn_swin_t_toy.py'

load_from = 'work_dirs/maskrcnn_swin_t_toy/iter_150.pth'
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]
max_iters = 60
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20)]
optim_wrapper = dict(optimizer=dict(lr=1e-4))
default_hooks = dict(checkpoint=dict(interval=max_iters))

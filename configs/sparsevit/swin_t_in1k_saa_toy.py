# Toy SAA for the classifier: swin_t_in1k_toy.py plus the adaptation hook; load_from = the dense toy model.
_base_ = './swin_t_in1k_toy.py'

load_from = 'work_dirs/swin_t_in1k_toy/iter_120.pth'
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]
max_iters = 80
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
default_hooks = dict(checkpoint=dict(interval=max_iters))

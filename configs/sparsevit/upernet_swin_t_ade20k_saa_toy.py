# Toy variant of upernet_swin_t_ade20k_saa.py: sparsity-aware adaptation of the toy UPerNet.
# The toy configs chain dense -> SAA -> search -> fine-tune on the generated data, so each inherits
# the dense toy config and adds the same change as its full counterpart.
#   python tools/train.py configs/sparsevit/upernet_swin_t_ade20k_saa_toy.py
_base_ = './upernet_swin_t_ade20k_toy.py'

load_from = 'work_dirs/upernet_swin_t_ade20k_toy/iter_200.pth'  # the dense toy model
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]
max_iters = 100
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=max_iters))

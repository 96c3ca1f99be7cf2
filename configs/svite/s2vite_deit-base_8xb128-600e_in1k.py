# S2ViTE-Base ("40 % structured sparsity"): 8 of 12 heads (0.7), 1843 of 3072 MLP neurons (0.6).
_base_ = './svite_deit-base_8xb128-600e_in1k.py'

model = dict(backbone=dict(structured=dict(head_density=0.7, mlp_density=0.6, mask_qkv_bias=True)))

custom_hooks = [
    dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL'),
    dict(_base_.s2vite_prune_grow, delta_t=7000),
]

# S2ViTE-Small: 4 of 6 heads (0.7), 921 of 1536 MLP neurons (0.6) per block (paper: 14.6 M params).
_base_ = './svite_deit-small_8xb64-600e_in1k.py'

model = dict(backbone=dict(structured=dict(head_density=0.7, mlp_density=0.6, mask_qkv_bias=True)))

custom_hooks = [dict(_base_.s2vite_prune_grow, delta_t=15000)]

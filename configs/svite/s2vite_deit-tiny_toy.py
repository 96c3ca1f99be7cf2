# S2ViTE on the toy ImageNet: the toy SViTE model keeping 2 of 3 heads and 537 of 768 MLP neurons per
# block (the paper's DeiT-Tiny densities 0.7 / 0.7).
_base_ = './svite_deit-tiny_toy.py'

model = dict(backbone=dict(structured=dict(head_density=0.7, mlp_density=0.7, mask_qkv_bias=True)))

custom_hooks = [dict(_base_.s2vite_prune_grow, delta_t=2)]

# SViTE on DeiT-Small (Table 1: Delta T 15000, T_end 0.8 of the run, alpha 0.5, cosine; 8 x 64 = 512,
# lr 5e-4, 600 epochs). Densities of the paper: 0.3 - 0.7 (--cfg-options custom_hooks.0.density=0.4).
_base_ = './svite_deit-tiny_8xb64-600e_in1k.py'

model = dict(backbone=dict(arch='deit-small'), head=dict(in_channels=384))

custom_hooks = [dict(_base_.svite_prune_grow, delta_t=15000)]

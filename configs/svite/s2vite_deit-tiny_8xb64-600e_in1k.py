# S2ViTE (structured): DeiT-Tiny keeping 2 of 3 heads (head density 0.7) and 537 of 768 MLP neurons
# (MLP density 0.7) per block; heads by Taylor importance, neurons by L1, Table 1 schedule.
# Export the compact model with the SparseDeiT export tool after training.
_base_ = './svite_deit-tiny_8xb64-600e_in1k.py'

model = dict(backbone=dict(structured=dict(head_density=0.7, mlp_density=0.7, mask_qkv_bias=True)))

custom_hooks = [dict(_base_.s2vite_prune_grow, delta_t=20000)]

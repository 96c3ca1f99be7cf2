# S2ViTE on the toy ImageNet: the toy SViTE model keeping 2 of 3 heads and 537 of 768 MLP neurons per
# block (the paper's DeiT-Tiny densities 0.7 / 0.7).
_base_ = './svite_deit-tiny_toy.py'

model = dict(backbone=dict(structured=dict(head_density=0.7, mlp_density=0.7, mask_qkv_bias=True)))

custom_hooks = [
    dict(
        type='mmsparse.PruneGrowHook',
        mode='structured',
        delta_t=2,
        t_end=0.8,
        alpha=0.5,
        decay='cosine',
        algorithm1=False,
        structured=dict(score_sync='all_reduce', mlp_growth='gradient'))
]

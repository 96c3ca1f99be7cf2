# SViTE's prune-and-grow hook with the paper's schedule (docs/method/svite.md): T_end 0.8 of the run,
# alpha 0.5 with cosine decay, the update rule of the paper's code (algorithm1=False). Each config adds
# its Delta T (`delta_t`, Table 1: 20000 for DeiT-Tiny, 15000 for Small, 7000 for Base):
#   custom_hooks = [dict(_base_.svite_prune_grow, delta_t=20000)]
# SViTE: unstructured, 50 % density spread by ERK, magnitude prune, gradient grow.
svite_prune_grow = dict(
    type='mmsparse.PruneGrowHook',
    mode='unstructured',
    density=0.5,
    distribution='erk',
    t_end=0.8,
    alpha=0.5,
    decay='cosine',
    prune='magnitude',
    grow='gradient',
    algorithm1=False)
# S2ViTE: structured heads and MLP neurons; scores all-reduced across ranks, MLP neurons grown by gradient.
s2vite_prune_grow = dict(
    type='mmsparse.PruneGrowHook',
    mode='structured',
    t_end=0.8,
    alpha=0.5,
    decay='cosine',
    algorithm1=False,
    structured=dict(score_sync='all_reduce', mlp_growth='gradient'))

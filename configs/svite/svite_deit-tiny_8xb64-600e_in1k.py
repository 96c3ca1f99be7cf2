# SViTE (Chen et al., NeurIPS 2021): unstructured dynamic sparse training of DeiT-Tiny from scratch.
# Only the sparsity differs from mmpretrain's DeiT config, plus the paper's recipe (docs/method/svite.md, 6):
# 8 GPUs x 64 = 512, lr 5e-4, 600 epochs, 5 warm-up epochs from 1e-6, min lr 1e-5, drop path 0.1,
# no gradient clipping, AMP, repeated augmentation x3. Table 1 schedule: Delta T 20000, T_end 0.8 of the
# run (= 1,200,960 of 1,501,200 steps), alpha 0.5, cosine decay. Other densities: 0.6, 0.7, e.g.
# --cfg-options custom_hooks.0.density=0.6
_base_ = ['mmpretrain::deit/deit-tiny_4xb256_in1k.py', '../_base_/schedules/svite_prune_grow.py']
custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)

model = dict(backbone=dict(type='mmsparse.SparseDeiT', drop_path_rate=0.1))

train_dataloader = dict(batch_size=64, sampler=dict(type='RepeatAugSampler', shuffle=True))

optim_wrapper = dict(
    type='mmsparse.AmpSViTEOptimWrapper',  # masks + prune-and-grow inside step(), fp16 loss scaling
    loss_scale='dynamic',
    optimizer=dict(lr=5e-4, weight_decay=0.05),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 5e-4, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
]
train_cfg = dict(by_epoch=True, max_epochs=600, val_interval=10)
auto_scale_lr = dict(base_batch_size=512)

custom_hooks = [dict(_base_.svite_prune_grow, delta_t=20000)]
randomness = dict(seed=0)

# SViTE on DeiT-Base (Table 1: Delta T 7000, T_end 0.8 of the run, alpha 0.5, cosine; 8 x 128 = 1024,
# lr 1e-3, 600 epochs). mmpretrain's DeiT-Base EMA copy is kept, and the hook keeps it masked.
_base_ = [
    'mmpretrain::deit/deit-base_16xb64_in1k.py',
    '../_base_/schedules/svite_prune_grow.py',
]
custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)

model = dict(backbone=dict(type='mmsparse.SparseDeiT', drop_path_rate=0.1))

train_dataloader = dict(batch_size=128, sampler=dict(type='RepeatAugSampler', shuffle=True))

optim_wrapper = dict(
    type='mmsparse.AmpSViTEOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(lr=1e-3, weight_decay=0.05),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
]
train_cfg = dict(by_epoch=True, max_epochs=600, val_interval=10)
auto_scale_lr = dict(base_batch_size=1024)

custom_hooks = [
    dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL'),
    dict(_base_.svite_prune_grow, delta_t=7000),
]
randomness = dict(seed=0)

# SViTE on the generated toy ImageNet (tools/dataset_converters/make_toy_imagenet.py, 8 classes,
# 32x32): DeiT-Tiny width (192, 3 heads of 64) with 4 blocks, patch 8 (16 patches + class token), fp32
# on a CPU, deterministic data (no augmentation) so that resume can be checked bit for bit.
# Prune-and-grow every 2 steps until 0.8 of the run: a few updates in a few iterations.
_base_ = './svite_deit-tiny_8xb64-600e_in1k.py'

data_root = 'data/toy_imagenet'
num_classes = 8
data_preprocessor = dict(
    num_classes=num_classes, mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True)

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=192, num_layers=4, num_heads=3, feedforward_channels=768),
        img_size=32,
        patch_size=8,
        drop_path_rate=0.0),
    head=dict(num_classes=num_classes),
    train_cfg=None)  # no Mixup / CutMix

pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline=pipeline))
val_dataloader = dict(
    _delete_=True,
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='val',
        pipeline=pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='mmsparse.SViTEOptimWrapper',
    _delete_=True,
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        }))
param_scheduler = []
train_cfg = dict(_delete_=True, by_epoch=False, max_iters=10, val_interval=10)
auto_scale_lr = dict(base_batch_size=8)

custom_hooks = [dict(_base_.svite_prune_grow, delta_t=2)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)

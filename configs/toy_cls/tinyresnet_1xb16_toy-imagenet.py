# A tiny ResNet classifier on the generated toy ImageNet (tools/dataset_converters/make_toy_imagenet.py).
# It is what `make demo TASK=cls` and the Foundation tests train: small enough for a CPU, deterministic
# (no random augmentation) so that resume can be checked bit for bit.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)

data_root = 'data/toy_imagenet'
num_classes = 8

data_preprocessor = dict(
    num_classes=num_classes, mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(3, ),
        norm_cfg=dict(type='BN')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline=pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='val',
        pipeline=pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=False, milestones=[150], gamma=0.1)
train_cfg = dict(by_epoch=False, max_iters=200, val_interval=100)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=False)

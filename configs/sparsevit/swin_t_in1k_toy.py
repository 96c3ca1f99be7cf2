# Toy variant of swin_t_in1k.py for CPUs: the generated ImageNet-style shapes
# (tools/dataset_converters/make_toy_imagenet.py --out data/toy_imagenet --size 224), a narrow
# SparseSwin (embed 32, depths 2-2-6-2), no augmentation, an iteration-based schedule.
_base_ = './swin_t_in1k.py'

data_root = 'data/toy_imagenet'
data_hint = ('generate it with: python tools/dataset_converters/make_toy_imagenet.py '
             '--out data/toy_imagenet --size 224')
num_classes = 8

data_preprocessor = dict(num_classes=num_classes)
model = dict(
    backbone=dict(embed_dims=32, num_heads=[1, 2, 4, 8], drop_path_rate=0.1, min_keep=1),
    head=dict(
        num_classes=num_classes,
        in_channels=256,
        loss=dict(_delete_=True, type='CrossEntropyLoss'),
        cal_acc=True),
    train_cfg=dict(_delete_=True))

pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline=pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='val',
        pipeline=pipeline))
test_dataloader = val_dataloader

max_iters = 120
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3), clip_grad=dict(max_norm=5.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20)]
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False)

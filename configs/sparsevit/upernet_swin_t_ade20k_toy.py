# Toy variant of upernet_swin_t_ade20k.py for CPUs: the generated ADE20K-format shapes
# (tools/dataset_converters/make_toy_ade.py --out data/toy_ade; 3 shape classes + background), images
# at their generated size (128x128 by default), a narrow SparseSwin (embed 32; depths 2-2-6-2 as
# Swin-T, so the search space is the paper's), slim UPerNet heads, BN instead of SyncBN, 200 iterations.
_base_ = './upernet_swin_t_ade20k.py'

data_root = 'data/toy_ade'
data_hint = ('generate it with: python tools/dataset_converters/make_toy_ade.py --out data/toy_ade '
             '--num-classes 3')
classes = ('background', 'circle', 'square', 'triangle')
num_classes = len(classes)
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    # no fixed crop: training batches are padded to a multiple of 32 (toy images: 64 or 128 px)
    data_preprocessor=dict(size=None, size_divisor=32),
    backbone=dict(
        embed_dims=32, num_heads=[1, 2, 4, 8], drop_path_rate=0.1, convert_weights=False, init_cfg=None),
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=64, num_classes=num_classes, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=num_classes, norm_cfg=norm_cfg))

dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=dict(classes=classes),
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline,
        **dataset))
test_dataloader = val_dataloader

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=max_iters, by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))

# Toy variant of upernet_swin_t_cityscapes.py for CPUs. There is no Cityscapes-format generator, and
# CityscapesDataset only accepts its 19 class names, so this runs the Cityscapes recipe's model on the
# toy ADE20K-format data (tools/dataset_converters/make_toy_ade.py --out data/toy_ade) with the same
# narrow backbone, slim heads and short schedule as upernet_swin_t_ade20k_toy.py.
#   python tools/train.py configs/sparsevit/upernet_swin_t_cityscapes_toy.py
_base_ = './upernet_swin_t_cityscapes.py'

data_root = 'data/toy_ade'
data_hint = ('generate it with: python tools/dataset_converters/make_toy_ade.py --out data/toy_ade '
             '--num-classes 3')
classes = ('background', 'circle', 'square', 'triangle')
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=None, size_divisor=32),
    backbone=dict(
        embed_dims=32, num_heads=[1, 2, 4, 8], drop_path_rate=0.1, convert_weights=False, init_cfg=None),
    decode_head=dict(
        in_channels=[32, 64, 128, 256], channels=64, num_classes=len(classes), norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=len(classes), norm_cfg=norm_cfg))

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
        pipeline=train_pipeline,
        **dataset,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training')))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        pipeline=test_pipeline,
        **dataset,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation')))
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

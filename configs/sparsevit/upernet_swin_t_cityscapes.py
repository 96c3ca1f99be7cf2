# SparseViT, semantic segmentation on Cityscapes: the ADE20K UPerNet SparseSwin-T recipe with mmseg's
# Cityscapes data settings (512x1024 crops, 19 classes, 80k iterations). mmseg ships no Swin
# Cityscapes config, so the data part below restates mmseg's `_base_/datasets/cityscapes.py`.
#   python tools/train.py configs/sparsevit/upernet_swin_t_cityscapes.py
_base_ = './upernet_swin_t_ade20k.py'

data_root = 'data/cityscapes/'
data_hint = ('download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from '
             'cityscapes-dataset.com into data/cityscapes/ and create the *_labelTrainIds.png maps '
             "with mmseg's tools/dataset_converters/cityscapes.py (needs cityscapesscripts)")
crop_size = (512, 1024)
num_classes = 19

model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(
        type='CityscapesDataset',
        data_root=data_root,
        pipeline=train_pipeline,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train')))
val_dataloader = dict(
    dataset=dict(
        type='CityscapesDataset',
        data_root=data_root,
        pipeline=test_pipeline,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')))
test_dataloader = val_dataloader

max_iters = 80000
train_cfg = dict(max_iters=max_iters, val_interval=8000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False)
]

# Toy variant of maskrcnn_swin_t.py for CPUs: the generated COCO-format shapes
# (tools/dataset_converters/make_toy_coco.py --out data/toy_coco --size 224 --num-classes 3), 224x224
# images, a narrow SparseSwin (embed 32; depths 2-2-6-2 as Swin-T, so the search space is the paper's),
# slim FPN/heads and an iteration-based schedule. What `make demo` and the tests train.
_base_ = './maskrcnn_swin_t.py'

data_root = 'data/toy_coco/'
data_hint = ('generate it with: python tools/dataset_converters/make_toy_coco.py --out data/toy_coco '
             '--size 224 --num-classes 3')
metainfo = dict(classes=('circle', 'square', 'triangle'))
num_classes = 3
width = 64  # FPN / head channels

model = dict(
    backbone=dict(
        embed_dims=32,
        num_heads=[1, 2, 4, 8],
        drop_path_rate=0.1,
        convert_weights=False,
        init_cfg=None,
        min_keep=1,  # at 224x224 stage 3 has a single window: never prune all of it
        # rank windows by the L2 norm of the whole window tensor: on this toy the reference's score
        # (L2 of per-token mean |x|) keeps the flat background and drops the shapes (stage-0 object
        # recall 0.18 against 0.60 for random windows), the window L2 keeps the shapes (docs/results.md)
        score_mode='window_l2'),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=num_classes)),
    train_cfg=dict(rpn=dict(sampler=dict(num=128)), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=50)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        pipeline=train_pipeline,
        filter_cfg=dict(filter_empty_gt=True, min_size=4)))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_iters = 150
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[120], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=4e-4))
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=4)

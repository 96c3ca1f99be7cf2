# SparseViT, monocular 3D detection: PGD (FCOSMono3D + PGDHead) with a SparseSwin-T backbone on KITTI.
# The dense starting point is mmdet3d's PGD-KITTI recipe (ResNet-101 caffe); the changes are the
# backbone (SparseSwin-T, all four stages into the FPN), the FPN input widths, ImageNet RGB
# normalisation for the Swin weights and AdamW (the Swin detection optimiser).
# The paper's 3D result (Table 1) is BEVDet-Tiny on nuScenes at 256x704 with 6 cameras. mmdet3d 1.x has
# no BEVDet (its PR was never merged; it lives in a fork of old mmdet3d), so the mono-3D task here is
# PGD on KITTI images, compared on speed-up, not on the paper's absolute NDS/mAP.
#   python tools/train.py configs/sparsevit/pgd_swin_t_kitti_mono3d.py
#   python tools/test.py configs/sparsevit/pgd_swin_t_kitti_mono3d.py CHECKPOINT    # KITTI AP40
_base_ = [
    'mmdet3d::pgd/pgd_r101-caffe_fpn_head-gn_4xb3-4x_kitti-mono3d.py', '../_base_/models/sparse_swin_t.py'
]

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)
data_hint = ('download the KITTI 3D object data (left colour images, calibration, labels) from '
             'cvlibs.net/datasets/kitti into data/kitti/ (training/image_2, ...) and create '
             'kitti_infos_{train,val}.pkl with mmdet3d\'s tools/create_data.py kitti')

pretrained = ('https://github.com/SwinTransformer/storage/releases/download/v1.0.0/'
              'swin_tiny_patch4_window7_224.pth')
model = dict(
    # Swin's ImageNet weights expect RGB with the usual ImageNet statistics (the base is caffe BGR)
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        _base_.sparse_swin_t,
        _delete_=True,  # the recipe's ResNet-101
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    # PGD-KITTI already feeds the FPN from level 0 (strides 4..32): start_level=0, num_outs=4
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        _delete_=True,
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))

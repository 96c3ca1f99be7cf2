# SparseViT, semantic segmentation: UPerNet with a SparseSwin-T backbone on ADE20K (512x512, 160k iters).
# The dense starting point is mmseg's own Swin-T UPerNet recipe; the only change is the backbone type
# (same hyper-parameters and state_dict keys, so mmseg/mmdet Swin checkpoints load unchanged).
#   python tools/train.py configs/sparsevit/upernet_swin_t_ade20k.py
#   python tools/test.py configs/sparsevit/upernet_swin_t_ade20k.py CHECKPOINT     # mIoU
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)
data_hint = ('download ADEChallengeData2016.zip from http://data.csail.mit.edu/places/ADEchallenge/ '
             'and unpack it into data/ade/ (data/ade/ADEChallengeData2016/{images,annotations}/'
             '{training,validation}/)')

# SparseSwin is built on mmdet's Swin, whose init_weights keeps only `backbone.*` keys: mmseg's
# converted ImageNet file (bare keys) would load nothing, so start from the official Swin-T weights
# and convert them on load (as mmdet's Swin configs do).
pretrained = ('https://github.com/SwinTransformer/storage/releases/download/v1.0.0/'
              'swin_tiny_patch4_window7_224.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsparse.SparseSwin',
        pretrain_img_size=224,
        embed_dims=96,
        patch_size=4,
        window_size=7,
        mlp_ratio=4,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        strides=(4, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        use_abs_pos_embed=False,
        act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='LN', requires_grad=True),
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
        # None = dense; else 4 per-stage lists of per-block window ratios in [0, 1)
        pruning_ratios=None))

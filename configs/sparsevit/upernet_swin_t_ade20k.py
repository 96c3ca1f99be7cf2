# SparseViT, semantic segmentation: UPerNet with a SparseSwin-T backbone on ADE20K (512x512, 160k iters).
# The dense starting point is mmseg's own Swin-T UPerNet recipe; the only changes are the backbone type
# (same hyper-parameters and state_dict keys, so mmseg/mmdet Swin checkpoints load unchanged) and its
# ImageNet weights (below).
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
        type='mmsparse.SparseSwin',  # mmseg's Swin-T arguments are mmdet's, so they carry over
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
        # None = dense; a name of mmsparse.sparsity.ratios.PUBLISHED_RATIOS ('cfg2', ...); or 4
        # per-stage lists of per-block window ratios in [0, 1)
        pruning_ratios=None,
        fused_attention='auto'))  # the faster attention kernel on this machine, measured once

# SparseViT step 4 on ADE20K: fine-tune the SAA model with fixed searched ratios.
#   python tools/train.py configs/sparsevit/upernet_swin_t_ade20k_finetune.py \
#       --cfg-options "model.backbone.pruning_ratios=[[...],[...],[...],[...]]"
# The search writes a finetune_*.py that inherits this file with its ratios. The ratios below are a
# placeholder: the COCO cfg2 pattern of the reference (stage 0 pruned hardest, stage 2 more with
# depth; 0.72x dense MACs at 512x512). The paper publishes no ADE20K ratios.
_base_ = './upernet_swin_t_ade20k.py'

load_from = 'work_dirs/upernet_swin_t_ade20k_saa/iter_40000.pth'  # the SAA model
model = dict(backbone=dict(init_cfg=None, pruning_ratios='cfg2'))

max_iters = 40000
train_cfg = dict(max_iters=max_iters, val_interval=8000)
optim_wrapper = dict(optimizer=dict(lr=6e-6))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1000, end=max_iters, by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=8000))

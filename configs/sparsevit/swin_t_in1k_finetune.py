# Fine-tune the SAA classifier with fixed ratios (tools/search.py writes a finetune_*.py inheriting this).
_base_ = './swin_t_in1k.py'

load_from = 'work_dirs/swin_t_in1k_saa/epoch_30.pth'
model = dict(backbone=dict(pruning_ratios='cfg2'))
train_cfg = dict(max_epochs=30)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=0, end=30)]

# Sparsity-aware adaptation of a trained Swin-T classifier (SparseViT's SAA, paper
# section 3.2 and docs/method/sparsevit.md 3.1, applied to classification):
# 30 epochs at 1/10 of the base learning rate, a random window-ratio configuration every iteration.
_base_ = './swin_t_in1k.py'

load_from = 'work_dirs/swin_t_in1k/epoch_300.pth'
# the hook's defaults: a random ratio set from {0, 0.1, ..., 0.8} every iteration, dense validation
custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook')]
train_cfg = dict(max_epochs=30)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=0, end=30)]

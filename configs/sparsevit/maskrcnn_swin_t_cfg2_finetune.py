# Fine-tune with the reference's released cfg2 ratios
# (A6000 batch-4 backbone latency / MACs per image: 35 ms, 29.08 G).
_base_ = './maskrcnn_swin_t_finetune.py'

model = dict(backbone=dict(pruning_ratios='cfg2'))

# Fine-tune with the reference's released cfg3 ratios
# (A6000 batch-4 backbone latency / MACs per image: 33 ms, 28.40 G).
_base_ = './maskrcnn_swin_t_finetune.py'

model = dict(backbone=dict(pruning_ratios='cfg3'))

# Fine-tune with the reference's released cfg1 ratios
# (A6000 batch-4 backbone latency / MACs per image: 42 ms, 34.83 G).
_base_ = './maskrcnn_swin_t_finetune.py'

model = dict(backbone=dict(pruning_ratios='cfg1'))

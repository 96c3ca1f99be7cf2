# SparseViT step 3 on COCO: evolutionary search of per-pair window ratios on the SAA model, scored by
# val2017 bbox mAP at 672x672, under a backbone MACs budget (one image; dense Swin-T: 40.41 G).
#   python tools/search.py configs/sparsevit/maskrcnn_swin_t_search.py \
#       work_dirs/maskrcnn_swin_t_saa/epoch_12.pth
#   python tools/search.py ... --constraint latency --budget 35   (ms, look-up table on this device)
# 29.1 G is the MACs of the reference's cfg2 (1.39x fewer than dense).
_base_ = './maskrcnn_swin_t.py'

model = dict(backbone=dict(init_cfg=None))  # weights come from the SAA checkpoint
# read by tools/search.py (its options override these); population, parents, mutation, crossover and
# generations are the loop's defaults, the paper's search; so is input_shape, (672, 672)
search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='coco/bbox_mAP',
    constraint=dict(kind='macs', max=29.1, batch=1),
    base_config='{{ fileDirname }}/maskrcnn_swin_t_finetune.py')

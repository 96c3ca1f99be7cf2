# SparseViT step 3 on COCO: evolutionary search of per-pair window ratios on the SAA model, scored by
# val2017 bbox mAP at 672x672, under a backbone MACs budget (one image; dense Swin-T: 40.41 G).
#   python tools/search.py configs/sparsevit/maskrcnn_swin_t_search.py \
#       work_dirs/maskrcnn_swin_t_saa/epoch_12.pth
#   python tools/search.py ... --constraint latency --budget 35   (ms, look-up table on this device)
# 29.1 G is the MACs of the reference's cfg2 (1.39x fewer than dense).
_base_ = './maskrcnn_swin_t.py'

model = dict(backbone=dict(init_cfg=None))
search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='coco/bbox_mAP',
    population=100,
    parents=25,
    num_mutation=50,
    num_crossover=50,
    mutation_prob=0.1,
    generations=20,
    constraint=dict(kind='macs', max=29.1, batch=1),
    input_shape=(672, 672),
    base_config='{{ fileDirname }}/maskrcnn_swin_t_finetune.py')

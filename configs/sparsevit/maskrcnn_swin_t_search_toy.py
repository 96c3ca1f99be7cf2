# Toy search: a small population on the toy val set under 0.40 G backbone MACs (dense toy: 0.533 G).
#   python tools/search.py configs/sparsevit/maskrcnn_swin_t_search_toy.py SAA_CKPT --work-dir W
_base_ = './maskrcnn_swin_t_toy.py'

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='coco/bbox_mAP',
    population=6,  # 3 mutations + 3 crossovers per generation (half and half by default)
    parents=2,
    mutation_prob=0.2,
    generations=2,
    constraint=dict(kind='macs', max=0.40, batch=1),
    input_shape=(224, 224),
    base_config='{{ fileDirname }}/maskrcnn_swin_t_finetune_toy.py')

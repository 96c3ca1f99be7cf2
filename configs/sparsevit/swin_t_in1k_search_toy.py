# Toy search for the classifier: top-1 on the toy val set under 0.40 G backbone MACs (dense: 0.533 G).
#   python tools/search.py configs/sparsevit/swin_t_in1k_search_toy.py SAA_CKPT --work-dir W
_base_ = './swin_t_in1k_toy.py'

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='accuracy/top1',
    population=8,  # 4 mutations + 4 crossovers per generation (half and half by default)
    parents=3,
    mutation_prob=0.2,
    generations=3,
    constraint=dict(kind='macs', max=0.40, batch=1),
    input_shape=(224, 224),
    base_config='{{ fileDirname }}/swin_t_in1k_finetune_toy.py')

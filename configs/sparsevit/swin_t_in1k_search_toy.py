# Toy search for the classifier: top-1 on the toy val set under 0.40 G backbone MACs (dense: 0.533 G).
_base_ = './swin_t_in1k_toy.py'

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='accuracy/top1',
    population=8,
    parents=3,
    num_mutation=4,
    num_crossover=4,
    mutation_prob=0.2,
    generations=3,
    constraint=dict(kind='macs', max=0.40, batch=1),
    input_shape=(224, 224),
    base_config='{{ fileDirname }}/swin_t_in1k_finetune_toy.py')

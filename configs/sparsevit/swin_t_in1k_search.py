# Evolutionary search of window ratios for the SAA classifier, top-1 under 3.2 G backbone MACs
# (dense Swin-T at 224x224: 4.49 G in this cost model).
#   python tools/search.py configs/sparsevit/swin_t_in1k_search.py work_dirs/swin_t_in1k_saa/epoch_30.pth
_base_ = './swin_t_in1k.py'

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='accuracy/top1',
    constraint=dict(kind='macs', max=3.2, batch=1),
    input_shape=(224, 224),
    val_subset=10000,
    base_config='{{ fileDirname }}/swin_t_in1k_finetune.py')

# Toy variant of upernet_swin_t_ade20k_search.py: a small evolutionary search (population 8,
# 3 generations) on the toy val set under 0.7x the dense MACs of the toy backbone at 128x128.
#   python tools/search.py configs/sparsevit/upernet_swin_t_ade20k_search_toy.py \
#       work_dirs/upernet_swin_t_ade20k_saa_toy/iter_100.pth
_base_ = './upernet_swin_t_ade20k_toy.py'

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='mIoU',
    population=8,  # 4 mutations + 4 crossovers per generation (half and half by default)
    parents=3,
    generations=3,
    # dense: 0.420 G MACs (embed 32, 128x128, one image)
    constraint=dict(kind='macs', max=0.294, batch=1),
    input_shape=(128, 128),
    base_config='{{ fileDirname }}/upernet_swin_t_ade20k_finetune_toy.py')

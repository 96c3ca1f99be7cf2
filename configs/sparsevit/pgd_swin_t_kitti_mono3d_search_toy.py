# Toy variant of pgd_swin_t_kitti_mono3d_search.py: a small evolutionary search (population 8,
# 3 generations) on the toy val set, scored by the moderate 2D AP40 over all classes (3D AP of a
# short toy training is mostly 0, which gives the search nothing to rank), under 0.7x the dense MACs
# of the toy backbone at 160x480 (the generated 480x160 images).
#   python tools/train.py configs/sparsevit/pgd_swin_t_kitti_mono3d_search_toy.py
_base_ = './pgd_swin_t_kitti_mono3d_toy.py'

load_from = 'work_dirs/pgd_swin_t_kitti_mono3d_saa_toy/iter_100.pth'  # the SAA toy model

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='Kitti metric/pred_instances_3d/KITTI/Overall_2D_AP40_moderate',
    population=8,
    parents=3,
    num_mutation=4,
    num_crossover=4,
    mutation_prob=0.1,
    generations=3,
    # dense: 1.200 G MACs (embed 32, 160x480, one image)
    constraint=dict(kind='macs', max=0.84, batch=1),
    input_shape=(160, 480),
    base_config='{{ fileDirname }}/pgd_swin_t_kitti_mono3d_finetune_toy.py')
train_cfg = dict(
    _delete_=True, dataloader={{_base_.val_dataloader}}, evaluator={{_base_.val_evaluator}}, **search_loop)
param_scheduler = None

# Toy variant of pgd_swin_t_kitti_mono3d_search.py: a small evolutionary search (population 8,
# 3 generations) on the toy val set, scored by the task's own metric, Car 3D AP40 (moderate, IoU 0.7),
# under 0.7x the dense MACs of the toy backbone at 160x480 (the generated 480x160 images).
#   python tools/search.py configs/sparsevit/pgd_swin_t_kitti_mono3d_search_toy.py \
#       work_dirs/pgd_swin_t_kitti_mono3d_saa_toy/iter_80.pth
_base_ = './pgd_swin_t_kitti_mono3d_toy.py'

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='Kitti metric/pred_instances_3d/KITTI/Car_3D_AP40_moderate_strict',
    population=8,  # 4 mutations + 4 crossovers per generation (half and half by default)
    parents=3,
    generations=3,
    # dense: 1.200 G MACs (embed 32, 160x480, one image)
    constraint=dict(kind='macs', max=0.84, batch=1),
    input_shape=(160, 480),
    base_config='{{ fileDirname }}/pgd_swin_t_kitti_mono3d_finetune_toy.py')

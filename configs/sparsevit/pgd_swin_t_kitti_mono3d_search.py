# SparseViT step 3 on KITTI mono-3D: evolutionary search of the per-pair window-pruning ratios of the
# SAA model, scored by moderate Car 3D AP40 under a backbone MACs budget (one 384x1248 image, the size
# KITTI's 375x1242 frames are padded to).
#   python tools/search.py configs/sparsevit/pgd_swin_t_kitti_mono3d_search.py \
#       work_dirs/pgd_swin_t_kitti_mono3d_saa/epoch_16.pth [--budget 35.3]
# Dense Swin-T costs 50.39 G MACs at 384x1248; the budget 35.3 G is 0.7x.
_base_ = './pgd_swin_t_kitti_mono3d.py'

model = dict(backbone=dict(init_cfg=None))  # weights come from the SAA checkpoint
# read by tools/search.py (its options override these); population, parents, mutation, crossover and
# generations are the loop's defaults, the paper's search
search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='Kitti metric/pred_instances_3d/KITTI/Car_3D_AP40_moderate_strict',
    constraint=dict(kind='macs', max=35.3, batch=1),
    input_shape=(384, 1248),
    base_config='{{ fileDirname }}/pgd_swin_t_kitti_mono3d_finetune.py')

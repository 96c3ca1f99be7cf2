# SparseViT step 3 on KITTI mono-3D: evolutionary search of the per-pair window-pruning ratios of the
# SAA model, scored by moderate Car 3D AP40 under a backbone MACs budget (one 384x1248 image, the size
# KITTI's 375x1242 frames are padded to).
#   python tools/train.py configs/sparsevit/pgd_swin_t_kitti_mono3d_search.py
#   python tools/search.py configs/sparsevit/pgd_swin_t_kitti_mono3d.py SAA_CKPT --budget 35.3
# Dense Swin-T costs 50.39 G MACs at 384x1248; the budget 35.3 G is 0.7x.
_base_ = './pgd_swin_t_kitti_mono3d.py'

load_from = 'work_dirs/pgd_swin_t_kitti_mono3d_saa/epoch_16.pth'  # the SAA model
model = dict(backbone=dict(init_cfg=None))

search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='Kitti metric/pred_instances_3d/KITTI/Car_3D_AP40_moderate_strict',
    population=100,
    parents=25,
    num_mutation=50,
    num_crossover=50,
    mutation_prob=0.1,
    generations=20,
    constraint=dict(kind='macs', max=35.3, batch=1),
    input_shape=(384, 1248),
    base_config='{{ fileDirname }}/pgd_swin_t_kitti_mono3d_finetune.py')
train_cfg = dict(
    _delete_=True, dataloader={{_base_.val_dataloader}}, evaluator={{_base_.val_evaluator}}, **search_loop)
param_scheduler = None  # nothing is trained

# SparseViT step 3 on ADE20K: evolutionary search of the per-pair window-pruning ratios of the SAA
# model, scored by val mIoU under a backbone MACs budget (analytic, 512x512, one image).
#   python tools/train.py configs/sparsevit/upernet_swin_t_ade20k_search.py
#   python tools/search.py configs/sparsevit/upernet_swin_t_ade20k.py SAA_CKPT --budget 20.5
# Writes best_ratios.json, search_history.jsonl, pareto.png and a finetune_*.py to the work_dir.
# Dense Swin-T costs 29.34 G MACs at 512x512; the budget 20.5 G is 0.7x (the paper's seg claim: 1.3x).
_base_ = './upernet_swin_t_ade20k.py'

load_from = 'work_dirs/upernet_swin_t_ade20k_saa/iter_40000.pth'  # the SAA model
model = dict(backbone=dict(init_cfg=None))

# also read by tools/search.py (its command-line options override these)
search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='mIoU',
    population=100,
    parents=25,
    num_mutation=50,
    num_crossover=50,
    mutation_prob=0.1,
    generations=20,
    constraint=dict(kind='macs', max=20.5, batch=1),
    input_shape=(512, 512),
    base_config='{{ fileDirname }}/upernet_swin_t_ade20k_finetune.py')
train_cfg = dict(
    _delete_=True, dataloader={{_base_.val_dataloader}}, evaluator={{_base_.val_evaluator}}, **search_loop)
param_scheduler = None  # nothing is trained

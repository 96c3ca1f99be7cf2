# SparseViT step 3 on ADE20K: evolutionary search of the per-pair window-pruning ratios of the SAA
# model, scored by val mIoU under a backbone MACs budget (analytic, 512x512, one image).
#   python tools/search.py configs/sparsevit/upernet_swin_t_ade20k_search.py \
#       work_dirs/upernet_swin_t_ade20k_saa/iter_40000.pth [--budget 20.5]
# Writes best_ratios.json, search_history.jsonl, pareto.png and a finetune_*.py to the work_dir.
# Dense Swin-T costs 29.34 G MACs at 512x512; the budget 20.5 G is 0.7x (the paper's seg claim: 1.3x).
_base_ = './upernet_swin_t_ade20k.py'

model = dict(backbone=dict(init_cfg=None))  # weights come from the SAA checkpoint
# read by tools/search.py (its options override these); population, parents, mutation, crossover and
# generations are the loop's defaults, the paper's search
search_loop = dict(
    type='mmsparse.EvolutionSearchLoop',
    score_key='mIoU',
    constraint=dict(kind='macs', max=20.5, batch=1),
    input_shape=(512, 512),
    base_config='{{ fileDirname }}/upernet_swin_t_ade20k_finetune.py')

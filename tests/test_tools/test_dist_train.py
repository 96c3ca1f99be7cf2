"""A real 2-process run of tools/dist_train.sh on CPU (gloo)."""
import json
import os.path as osp

from tests.tool_runner import REPO_ROOT, data_root_options, run_tool, train_losses

CONFIG = osp.join(REPO_ROOT, 'configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py')


def test_two_process_training_keeps_ranks_identical_and_learns(toy_imagenet, tmp_path):
    work = str(tmp_path / 'dist')
    config = tmp_path / 'toy_cls_consistency.py'
    config.write_text(f"_base_ = '{CONFIG}'\n"
                      "custom_hooks = [dict(type='mmsparse.DistConsistencyHook')]\n")
    run_tool([
        'dist_train.sh',
        str(config), '2', '--work-dir', work, '--cfg-options', *data_root_options(toy_imagenet),
        'train_dataloader.batch_size=8', 'train_cfg.max_iters=40', 'train_cfg.val_interval=40',
        'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=40'
    ],
             env=dict(PORT='29533'))
    with open(osp.join(work, 'param_fingerprints.json')) as f:
        prints = json.load(f)
    assert prints['world_size'] == 2 and len(prints['ranks']) == 2
    assert prints['mismatched'] == []
    assert prints['ranks'][0] == prints['ranks'][1]
    # every parameter made it into the comparison
    assert len(prints['ranks'][0]) == 62 and 'head.fc.weight' in prints['ranks'][0]
    losses = train_losses(work)
    assert sorted(losses) == list(range(1, 41))
    first = sum(losses[i] for i in range(1, 6)) / 5
    last = sum(losses[i] for i in range(36, 41)) / 5
    assert last < 0.7 * first, (first, last)

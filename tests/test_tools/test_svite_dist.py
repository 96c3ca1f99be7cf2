"""SViTE / S2ViTE under tools/dist_train.sh with 2 gloo ranks (CPU).

Each rank decides its prune-and-grow alone (unstructured: from the DDP-averaged gradient; structured:
from all-reduced head scores) before rank 0's masks are broadcast; the debug logs show that those
local decisions, and the masks after the broadcast, are identical on both ranks at every update.
"""
import json
import math
import os.path as osp

from tests.tool_runner import REPO_ROOT, data_root_options, read_svite_updates, run_tool, write_child_config

TOY = osp.join(REPO_ROOT, 'configs/svite/svite_deit-tiny_toy.py')
TOY_S2 = osp.join(REPO_ROOT, 'configs/svite/s2vite_deit-tiny_toy.py')


def test_two_gloo_ranks_hold_identical_masks_after_every_update(toy_imagenet, tmp_path):
    config = write_child_config(
        tmp_path, 'svite_dist.py',
        ("custom_hooks = [dict(type='mmsparse.PruneGrowHook', density=0.5, delta_t=2, t_end=0.8,\n"
         "                     debug=True),\n"
         "                dict(type='mmsparse.DistConsistencyHook', interval=2)]\n"
         "train_cfg = dict(max_iters=6, val_interval=100)\n"
         "default_hooks = dict(checkpoint=dict(interval=100))\n"), TOY)
    work = str(tmp_path / 'dist')
    run_tool(
        ['dist_train.sh', config, '2', '--work-dir', work, '--cfg-options'] +
        data_root_options(toy_imagenet) + ['train_dataloader.batch_size=4'],
        env=dict(PORT='29571'))
    rank0, rank1 = read_svite_updates(work, 0), read_svite_updates(work, 1)
    assert [u['t'] for u in rank0] == [u['t'] for u in rank1] == [2, 4]  # T_end = round(4.8) = 5
    for u0, u1 in zip(rank0, rank1):
        assert u0['digest'] == u1['digest']
        # each rank decided alone (from the all-reduced gradient) before rank 0's masks were
        # broadcast, and the decisions already agreed
        assert u0['local_digest'] == u1['local_digest'] == u0['digest']
        assert u0['layers'] == u1['layers']
        for layer in u0['layers'].values():
            assert layer['pruned'] == layer['grown'] > 0
    with open(osp.join(work, 'param_fingerprints.json')) as f:
        prints = json.load(f)
    assert prints['world_size'] == 2 and prints['mismatched'] == []


def test_structured_two_ranks_agree_on_heads_and_neurons_at_every_update(toy_imagenet, tmp_path):
    config = write_child_config(
        tmp_path,
        's2vite_dist.py',
        ("custom_hooks = [dict(type='mmsparse.PruneGrowHook', mode='structured', delta_t=1, t_end=1.0,\n"
         "                     structured=dict(score_sync='all_reduce'), debug=True),\n"
         "                dict(type='mmsparse.DistConsistencyHook')]\n"
         "train_cfg = dict(max_iters=4, val_interval=100)\n"
         "default_hooks = dict(checkpoint=dict(interval=100))\n"),
        base=TOY_S2)
    work = str(tmp_path / 'work')
    run_tool(
        ['dist_train.sh', config, '2', '--work-dir', work, '--cfg-options'] +
        data_root_options(toy_imagenet) + ['train_dataloader.batch_size=4'],
        env=dict(PORT='29583'))
    ranks = [read_svite_updates(work, 0), read_svite_updates(work, 1)]
    assert [u['t'] for u in ranks[0]] == [u['t'] for u in ranks[1]] == [1, 2, 3]
    for u0, u1 in zip(*ranks):
        assert u0['local_digest'] == u1['local_digest'] == u0['digest'] == u1['digest']
        for name, layer in u0['layers'].items():
            # DeiT-Tiny densities 0.7 / 0.7: floor(3 * 0.7) = 2 heads, floor(768 * 0.7) = 537 neurons
            assert layer['active'] == (2 if name.endswith('heads') else 537)
            assert layer['pruned'] == layer['grown']
            assert layer['swapped'] == math.ceil(u0['rate'] * layer['active'])
    with open(osp.join(work, 'param_fingerprints.json')) as f:
        assert json.load(f)['mismatched'] == []

"""SViTE through tools/train.py: train-4 equals train-2 + resume + train-2, bit for bit, across an update."""
import os.path as osp

import torch

from tests.tool_runner import (REPO_ROOT, data_root_options, read_svite_updates, run_tool, train_losses,
                               write_child_config)

TOY = osp.join(REPO_ROOT, 'configs/svite/svite_deit-tiny_toy.py')


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_train_4_equals_train_2_resume_train_2_across_an_update(toy_imagenet, tmp_path):
    # updates at t = 1, 2, 3 (Delta T 1, T_end = T_total = 4): one before the checkpoint at 2 and one
    # after it
    config = write_child_config(
        tmp_path, 'svite_resume.py',
        ("custom_hooks = [dict(type='mmsparse.PruneGrowHook', density=0.5, delta_t=1, t_end=1.0,\n"
         "                     debug=True)]\n"
         "train_cfg = dict(max_iters=4, val_interval=100)\n"
         "default_hooks = dict(checkpoint=dict(interval=2))\n"), TOY)
    work_a, work_c = str(tmp_path / 'a'), str(tmp_path / 'c')
    run_tool(['train.py', config, '--work-dir', work_a, '--cfg-options'] + data_root_options(toy_imagenet))
    # the iteration-2 checkpoint of run A is what a run stopped after 2 iterations leaves behind
    run_tool([
        'train.py', config, '--work-dir', work_c, '--resume',
        osp.join(work_a, 'iter_2.pth'), '--cfg-options'
    ] + data_root_options(toy_imagenet))
    losses_a, losses_c = train_losses(work_a), train_losses(work_c)
    assert sorted(losses_a) == [1, 2, 3, 4] and sorted(losses_c) == [3, 4]
    assert losses_c == {3: losses_a[3], 4: losses_a[4]}  # same floats
    a, c = load(osp.join(work_a, 'iter_4.pth')), load(osp.join(work_c, 'iter_4.pth'))
    for key, value in a['state_dict'].items():
        assert torch.equal(value, c['state_dict'][key]), key
    for idx, state in a['optimizer']['state'].items():
        for k in ('exp_avg', 'exp_avg_sq'):
            assert torch.equal(state[k], c['optimizer']['state'][idx][k])
    sa, sc = a['svite'], c['svite']
    assert (sa['t'], sa['num_updates']) == (sc['t'], sc['num_updates']) == (4, 3)
    assert sa['masker']['masks'].keys() == sc['masker']['masks'].keys()
    for name, mask in sa['masker']['masks'].items():
        assert torch.equal(mask, sc['masker']['masks'][name]), name
    assert torch.equal(sa['generator'], sc['generator'])
    updates_a, updates_c = read_svite_updates(work_a), read_svite_updates(work_c)
    assert [u['t'] for u in updates_a] == [1, 2, 3] and [u['t'] for u in updates_c] == [3]
    assert updates_c[0] == updates_a[2]  # the update after the resume: same masks, same stats

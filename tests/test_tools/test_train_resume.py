"""tools/train.py: resume is bit-exact, and bad checkpoints fail before anything is written."""
import os
import os.path as osp

import pytest
import torch

from tests.tool_runner import data_root_options, run_tool, train_losses, tree_digest

CONFIG = 'configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py'


def cfg_options(data_root, max_iters):
    return [
        '--cfg-options', *data_root_options(data_root), f'train_cfg.max_iters={max_iters}',
        'train_cfg.val_interval=1000', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=5',
        'randomness.deterministic=True'
    ]


def load_state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def resumed_runs(toy_imagenet, tmp_path_factory):
    """Run A: 4 iterations straight. Run B: 2 iterations, stop, ``--resume``, 2 more. Run C: 2 more
    from B's ``iter_2.pth`` given as an explicit path, in a work_dir of its own."""
    base = tmp_path_factory.mktemp('resume')
    work_a, work_b, work_c = str(base / 'a'), str(base / 'b'), str(base / 'c')
    run_tool(['train.py', CONFIG, '--work-dir', work_a] + cfg_options(toy_imagenet, 4))
    run_tool(['train.py', CONFIG, '--work-dir', work_b] + cfg_options(toy_imagenet, 2))
    run_tool(['train.py', CONFIG, '--work-dir', work_b, '--resume'] + cfg_options(toy_imagenet, 4))
    run_tool(['train.py', CONFIG, '--work-dir', work_c, '--resume',
              osp.join(work_b, 'iter_2.pth')] + cfg_options(toy_imagenet, 4))
    return work_a, work_b, work_c


def test_resume_equals_uninterrupted_training(resumed_runs):
    work_a, work_b, _ = resumed_runs
    losses_a, losses_b = train_losses(work_a), train_losses(work_b)
    assert sorted(losses_a) == [1, 2, 3, 4]
    assert sorted(losses_b) == [1, 2, 3, 4]  # 1-2 from the first run, 3-4 after resuming
    assert losses_a == losses_b  # same floats, not approximately
    ckpt_a = load_state(osp.join(work_a, 'iter_4.pth'))
    ckpt_b = load_state(osp.join(work_b, 'iter_4.pth'))
    assert ckpt_a['state_dict'].keys() == ckpt_b['state_dict'].keys()
    for key, value in ckpt_a['state_dict'].items():
        assert torch.equal(value, ckpt_b['state_dict'][key]), key
    momentum_a = ckpt_a['optimizer']['state']
    momentum_b = ckpt_b['optimizer']['state']
    for idx in momentum_a:
        assert torch.equal(momentum_a[idx]['momentum_buffer'], momentum_b[idx]['momentum_buffer'])


def test_resume_from_an_explicit_checkpoint_path_continues_bit_exactly(resumed_runs):
    work_a, work_b, work_c = resumed_runs
    losses_a, losses_c = train_losses(work_a), train_losses(work_c)
    assert sorted(losses_c) == [3, 4]  # it started after iteration 2 of the given checkpoint
    assert losses_c == {t: losses_a[t] for t in (3, 4)}
    weights_a = load_state(osp.join(work_a, 'iter_4.pth'))['state_dict']
    weights_c = load_state(osp.join(work_c, 'iter_4.pth'))['state_dict']
    assert all(torch.equal(v, weights_c[k]) for k, v in weights_a.items())
    # auto resume (no path) recorded where it ended
    with open(osp.join(work_b, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_4.pth')


@pytest.mark.parametrize('kind', ['missing', 'corrupt', 'truncated'])
def test_bad_checkpoint_is_one_clear_error_and_writes_nothing(resumed_runs, toy_imagenet, tmp_path, kind):
    _, work_b, _ = resumed_runs
    good = osp.join(work_b, 'iter_2.pth')
    bad = str(tmp_path / 'bad.pth')
    if kind == 'corrupt':
        with open(bad, 'wb') as f:
            f.write(b'this is not a checkpoint' * 100)
    elif kind == 'truncated':
        with open(good, 'rb') as f:
            data = f.read()
        with open(bad, 'wb') as f:
            f.write(data[:len(data) // 2])
    before = tree_digest(work_b)
    proc = run_tool(
        ['train.py', CONFIG, '--work-dir', work_b, '--resume', bad] + cfg_options(toy_imagenet, 6),
        check=False)
    assert proc.returncode != 0
    expected = 'checkpoint not found' if kind == 'missing' else 'is corrupt'
    last_lines = proc.stderr.strip().splitlines()[-1]
    assert expected in last_lines and bad in last_lines, proc.stderr[-2000:]
    assert tree_digest(work_b) == before  # nothing in the work_dir was written or overwritten


def test_corrupt_auto_resume_target_is_reported(resumed_runs, toy_imagenet, tmp_path):
    work = tmp_path / 'w'
    work.mkdir()
    target = tmp_path / 'w' / 'iter_2.pth'
    target.write_bytes(b'\x00' * 64)
    (work / 'last_checkpoint').write_text(str(target))
    proc = run_tool(
        ['train.py', CONFIG, '--work-dir', str(work), '--resume'] + cfg_options(toy_imagenet, 2), check=False)
    assert proc.returncode != 0 and 'is corrupt' in proc.stderr and str(target) in proc.stderr
    assert sorted(os.listdir(work)) == ['iter_2.pth', 'last_checkpoint']


def test_missing_data_root_is_one_clear_error(tmp_path):
    missing = str(tmp_path / 'nowhere')
    proc = run_tool(
        ['train.py', CONFIG, '--work-dir', str(tmp_path / 'w')] + cfg_options(missing, 2), check=False)
    assert proc.returncode != 0
    assert f'train_dataloader.dataset.data_root "{missing}" does not exist' in proc.stderr
    assert not osp.exists(tmp_path / 'w')

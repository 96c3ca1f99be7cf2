"""2-process runs end with exit code 0 every time: each tool destroys its process group on the way out.

Before the tools did this, a rank that had finished training and written its checkpoint could abort at
interpreter exit ("terminate called without an active exception"), and torchrun then reported the
whole job as failed.
"""
import os.path as osp

from tests.tool_runner import REPO_ROOT, data_root_options, run_tool

CONFIG = osp.join(REPO_ROOT, 'configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py')
REPEATS = 3


def test_repeated_two_process_train_and_test_exit_zero_every_time(toy_imagenet, tmp_path):
    for i in range(REPEATS):
        work = str(tmp_path / f'run{i}')
        proc = run_tool([
            'dist_train.sh', CONFIG, '2', '--work-dir', work, '--cfg-options',
            *data_root_options(toy_imagenet), 'train_dataloader.batch_size=4', 'train_cfg.max_iters=2',
            'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2'
        ],
                        env=dict(PORT=str(29611 + i)),
                        check=False)
        assert proc.returncode == 0, (i, proc.stderr[-3000:])
        assert 'terminate called' not in proc.stderr
        assert osp.isfile(osp.join(work, 'iter_2.pth'))
    proc = run_tool([
        'dist_test.sh', CONFIG,
        osp.join(work, 'iter_2.pth'), '2', '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *data_root_options(toy_imagenet)
    ],
                    env=dict(PORT='29619'),
                    check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'terminate called' not in proc.stderr

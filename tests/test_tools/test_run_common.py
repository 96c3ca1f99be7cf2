"""tools/run_common.py: the process group is destroyed on every exit, one-line user errors, data roots."""
import os.path as osp
import sys

import pytest
import torch.distributed as dist

from tests.tool_runner import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
from run_common import check_data_roots, run_main  # noqa: E402

sys.path.pop(0)


@pytest.fixture
def single_rank_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_run_main_destroys_the_process_group_after_success(single_rank_group):
    assert run_main(lambda: dist.get_world_size()) == 1
    assert not dist.is_initialized()


def test_run_main_destroys_the_process_group_after_an_error(single_rank_group):

    def fails():
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        run_main(fails)
    assert not dist.is_initialized()


def test_run_main_keeps_the_traceback_of_a_file_error_it_did_not_raise(tmp_path):

    def opens_missing():
        open(tmp_path / 'not-there.txt')

    # not one of our user-input errors: it surfaces as itself, not as a one-line exit
    with pytest.raises(FileNotFoundError, match='not-there.txt'):
        run_main(opens_missing)


def test_run_main_reports_our_missing_input_in_one_line(capsys):
    from mmsparse.utils import InputNotFoundError

    def missing():
        raise InputNotFoundError('config file not found: x.py')

    with pytest.raises(SystemExit) as exc:
        run_main(missing)
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().endswith('error: config file not found: x.py')


def test_check_data_roots_skips_remote_uris_but_names_a_missing_local_root(tmp_path):
    from mmengine.config import Config

    from mmsparse.utils import InputNotFoundError
    remote = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(data_root='s3://bucket/coco/', backend_args=dict(backend='petrel')))))
    check_data_roots(remote)  # read through backend_args at run time: nothing to check here
    local = Config(
        dict(
            val_dataloader=dict(
                dataset=dict(type='RepeatDataset', dataset=dict(data_root=str(tmp_path / 'nowhere'))))))
    with pytest.raises(InputNotFoundError, match=r'val_dataloader.dataset.data_root ".*nowhere"'):
        check_data_roots(local)

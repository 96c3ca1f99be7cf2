"""tools/run_common.py: the process group is destroyed on every exit, one-line user errors, data roots."""
import os.path as osp
import subprocess
import sys
import textwrap

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
    assert run_main(lambda: dist.get_world_size(), end_process_after_distributed=False) == 1
    assert not dist.is_initialized()


def test_run_main_destroys_the_process_group_after_an_error(single_rank_group):

    def fails():
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        run_main(fails, end_process_after_distributed=False)
    assert not dist.is_initialized()


# A one-rank gloo job run as a tool: its main does a collective, prints without flushing (stdout is a
# pipe, so block-buffered) and then ends as MODE says.
DISTRIBUTED_TOOL = textwrap.dedent('''
    import atexit, sys
    import torch, torch.distributed as dist
    sys.path.insert(0, {tools!r})
    from run_common import run_main
    from mmsparse.utils import InputNotFoundError

    class SaysWhenFinalised:
        def __del__(self):
            print('finalised', flush=True)

    KEEP = SaysWhenFinalised()
    dist.init_process_group('gloo', init_method='file://{store}', rank=0, world_size=1)
    atexit.register(lambda: print('atexit: group initialised =', dist.is_initialized()))

    def main():
        dist.broadcast(torch.ones(3), 0)
        print('printed before the end')
        mode = sys.argv[1]
        if mode == 'input':
            raise InputNotFoundError('config file not found: x.py')
        if mode == 'crash':
            raise RuntimeError('boom')
        if mode == 'exit3':
            sys.exit(3)

    run_main(main)
''')


@pytest.mark.parametrize('mode, code', [('ok', 0), ('input', 2), ('crash', 1), ('exit3', 3)])
def test_distributed_tool_ends_without_finalisation_with_the_right_exit_code(tmp_path, mode, code):
    script = tmp_path / 'tool.py'
    script.write_text(DISTRIBUTED_TOOL.format(tools=osp.join(REPO_ROOT, 'tools'), store=tmp_path / 'store'))
    proc = subprocess.run([sys.executable, str(script), mode],
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == code, proc.stderr[-2000:]
    # buffered output and the atexit handlers survive; the group is gone before them; the interpreter's
    # finalisation (where a gloo worker could abort the rank) never runs
    assert proc.stdout.splitlines() == ['printed before the end', 'atexit: group initialised = False']
    if mode == 'input':
        assert proc.stderr.strip().endswith('tool.py: error: config file not found: x.py')
    if mode == 'crash':
        assert 'RuntimeError: boom' in proc.stderr and 'Traceback' in proc.stderr


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

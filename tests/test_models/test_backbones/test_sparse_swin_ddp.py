"""SparseSwin under DDP (docs/method/sparsevit.md, 2.2): min_keep=1 needs no find_unused_parameters."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.tiny_models import TINY_SWIN_2222 as TINY

# at 224^2 stage 3 has a single window: r = .5 keeps floor(0.5) = 0 windows unless min_keep=1
RATIOS = [[.5, .5], [0, 0], [.2, .2], [.5, .5]]


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _steps(min_keep, rank):
    """Two DDP steps; DDP reports unused parameters on the iteration after they were skipped."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from mmsparse.models.backbones import SparseSwin
    torch.manual_seed(0)
    model = DDP(SparseSwin(pruning_ratios=RATIOS, min_keep=min_keep, **TINY), find_unused_parameters=False)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(rank))
    for _ in range(2):
        model.zero_grad()
        sum(o.mean() for o in model(x)).backward()
    return model.module.stages[3].blocks[1].attn.w_msa.qkv.weight.grad.clone()


def _worker(rank, port, result):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        result[(rank, 1)] = ('ok', _steps(1, rank))
        try:  # last: a failed DDP step leaves the process group unusable
            result[(rank, 0)] = ('ok', _steps(0, rank))
        except RuntimeError as e:
            result[(rank, 0)] = ('error', str(e)[:300])
    finally:
        dist.destroy_process_group()


def test_ddp_min_keep():
    result = mp.Manager().dict()
    mp.spawn(_worker, args=(_free_port(), result), nprocs=2, join=True)
    ok = [result[(r, 1)] for r in range(2)]
    assert ok[0][0] == 'ok' and ok[1][0] == 'ok'
    # gradients are all-reduced: identical on both ranks although the inputs differ
    assert torch.equal(ok[0][1], ok[1][1]) and ok[0][1].abs().sum() > 0
    bad = [result[(r, 0)] for r in range(2)]
    assert any(status == 'error' and 'parameters' in msg for status, msg in bad)

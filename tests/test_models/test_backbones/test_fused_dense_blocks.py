"""The unpruned blocks of a pruned SparseSwin use the fused attention kernel; a ratio-0 one stays mmdet's."""
import torch
from mmdet.models.backbones.swin import SwinTransformer as MMDetSwin
from torch.utils._python_dispatch import TorchDispatchMode

from mmsparse.models.backbones import SparseSwin
from tests.tiny_models import TINY_SWIN_T

# stages 1 and 3 unpruned: four blocks on the dense path, two of them shifted (with the SW-MSA mask)
PRUNED = [[.5, .5], [0, 0], [.5] * 6, [0, 0]]
SDPA = getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu')


class SdpaCounter(TorchDispatchMode):
    """Counts calls of the CPU fused attention kernel."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += func.overloadpacket is SDPA
        return func(*args, **(kwargs or {}))


def twins(**kwargs):
    """(mmdet Swin, SparseSwin) with the same random weights and non-trivial position tables."""
    torch.manual_seed(0)
    dense = MMDetSwin(**TINY_SWIN_T, drop_path_rate=0.)
    with torch.no_grad():
        for name, p in dense.named_parameters():
            if 'relative_position_bias_table' in name:
                p.normal_(0, 0.5)
    sparse = SparseSwin(**TINY_SWIN_T, drop_path_rate=0., **kwargs)
    sparse.load_state_dict(dense.state_dict(), strict=True)
    dense.eval()  # mmdet's Swin.train() returns None: no chaining
    return dense, sparse.eval()


def run(model, x):
    with torch.no_grad(), SdpaCounter() as counter:
        out = model(x)
    return out, counter.calls


def test_unpruned_blocks_of_a_pruned_model_use_the_fused_kernel_and_match_op_by_op():
    _, fused = twins(pruning_ratios=PRUNED)
    _, op_by_op = twins(pruning_ratios=PRUNED, fused_attention=False)
    x = torch.randn(2, 3, 224, 320, generator=torch.Generator().manual_seed(1))  # batch 2, padded stages
    got, calls = run(fused, x)
    ref, ref_calls = run(op_by_op, x)
    assert fused.fused_dense_blocks and not op_by_op.fused_dense_blocks
    assert calls == sum(fused.depths) and ref_calls == 0  # every block, the four unpruned ones included
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_ratio_zero_model_stays_bit_identical_to_mmdet_unless_fusing_is_asked_for():
    mmdet, sparse = twins()
    x = torch.randn(2, 3, 224, 320, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = mmdet(x)
    got, calls = run(sparse, x)
    assert calls == 0 and not sparse.fused_dense_blocks
    for a, b in zip(got, ref):
        assert torch.equal(a, b)
    with sparse.fusing_unpruned_blocks():  # how the latency LUT times the dense parts
        fused, fused_calls = run(sparse, x)
    assert fused_calls == sum(sparse.depths) and not sparse.fused_dense_blocks  # restored on exit
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_training_forward_of_a_pruned_model_never_uses_the_fused_kernel():
    _, sparse = twins(pruning_ratios=PRUNED)
    sparse.train()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with SdpaCounter() as counter:
        sum(o.sum() for o in sparse(x)).backward()
    assert counter.calls == 0

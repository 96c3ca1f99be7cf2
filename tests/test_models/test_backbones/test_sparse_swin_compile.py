"""SparseSwin under ``torch.compile``: one graph, no recompile on new images, compiled == eager.

Dynamo's guards are counted with a counting backend (``aot_eager`` behind it keeps the counting tests
to seconds); one test compiles with inductor, the backend users get, and compares with eager.
"""
import pytest
import torch
import torch._dynamo as dynamo
from torch._dynamo.testing import CompileCounterWithBackend

from mmsparse.models.backbones import SparseSwin
from tests.tiny_models import TWO_STAGE_SWIN

# two stages of two blocks: regular and shifted windows, a padded stage-0 map (18 -> 21 tokens),
# and a dense stage after a pruned one
SMALL = TWO_STAGE_SWIN
RATIOS_A = [[.5, .5], [0, 0]]
RATIOS_B = [[.3, .6], [.5, .5]]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Compiled code is cached per code object: each test starts from nothing and leaves nothing."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    dynamo.reset()
    yield
    dynamo.reset()
    torch.set_num_threads(prev)


def small_swin(ratios, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = SparseSwin(**SMALL, pruning_ratios=ratios, **kwargs).eval()
    with torch.no_grad():  # non-trivial position tables: a wrong bias gather shows in the output
        for blk in (b for s in model.stages for b in s.blocks):
            blk.attn.w_msa.relative_position_bias_table.normal_(0, 0.5)
    return model


def images(seed, shape=(72, 72)):
    return torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))


def max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def test_explain_reports_no_graph_break_swin_t_depths_cfg2():
    model = SparseSwin(embed_dims=16, num_heads=(1, 2, 4, 8), drop_path_rate=0., pruning_ratios='cfg2').eval()
    with torch.no_grad():
        report = dynamo.explain(model)(images(0, (112, 112)))
    assert report.graph_break_count == 0, report.break_reasons
    assert report.graph_count == 1


@pytest.mark.parametrize('fused', [True, False])
def test_fullgraph_new_images_do_not_recompile_and_match_eager(fused):
    model = small_swin(RATIOS_A, fused_attention=fused)
    counter = CompileCounterWithBackend('aot_eager')
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    with torch.no_grad():
        for seed in range(4):
            x = images(seed)
            assert max_diff(compiled(x), model(x)) <= 1e-5
    assert counter.frame_count == 1


def test_ratio_change_recompiles_once_and_switching_back_is_free():
    model = small_swin(RATIOS_A)
    counter = CompileCounterWithBackend('aot_eager')
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    with torch.no_grad():
        compiled(images(0))
        model.set_pruning_ratios(RATIOS_B)
        for seed in (1, 2):
            x = images(seed)
            out = compiled(x)
        assert counter.frame_count == 2  # one recompile for the new ratio set
        assert max_diff(out, model(x)) <= 1e-5
        model.set_pruning_ratios(RATIOS_A)
        x = images(3)
        out = compiled(x)
        assert counter.frame_count == 2  # the first set's graph is still cached
        assert max_diff(out, model(x)) <= 1e-5


def test_eager_caches_still_fill_after_compiling():
    """Compiling bypasses the geometry/bias caches; eager calls of the same model still use them."""
    model = small_swin(RATIOS_A)
    compiled = torch.compile(model, backend='aot_eager', fullgraph=True)
    with torch.no_grad():
        compiled(images(0))
        assert len(model._geometry_cache.tensors) == 0 and not model._geometry_cache.bias
        model(images(0))
    assert len(model._geometry_cache.tensors) > 0 and len(model._geometry_cache.bias) > 0


def test_inductor_output_within_1e4_of_eager():
    # one stage: a cold inductor compile is mostly fixed cost, and every extra kernel adds to it
    torch.manual_seed(0)
    model = SparseSwin(
        embed_dims=16,
        num_heads=(1, ),
        depths=(2, ),
        strides=(4, ),
        out_indices=(0, ),
        drop_path_rate=0.,
        pruning_ratios=[[.5, .5]]).eval()
    with torch.no_grad():
        for blk in model.stages[0].blocks:
            blk.attn.w_msa.relative_position_bias_table.normal_(0, 0.5)
    compiled = torch.compile(model, fullgraph=True)  # inductor, CPU C++ kernels
    with torch.no_grad():
        for seed in (0, 1):
            x = images(seed)
            out, ref = compiled(x), model(x)
            assert [o.shape for o in out] == [r.shape for r in ref]
            assert max_diff(out, ref) <= 1e-4

"""CUDAGraphForward's keying, re-recording and eager fallback, on CPU with a stand-in recorder.

The stand-in records like a CUDA graph does: it remembers the static input tensor and, on replay,
recomputes into the *same* output tensors, so a wrong buffer reuse (an input not copied in, a graph
replayed for another shape or ratio set) shows up as a wrong output against eager.
"""
import pytest
import torch

from mmsparse.models.backbones import SparseSwin
from mmsparse.models.backbones.cuda_graph_backbone import CUDAGraphForward
from tests.tiny_models import TWO_STAGE_SWIN as TINY


class FakeRecorder:
    """``capture(fn, static_input, warmup)`` that replays ``fn`` into fixed output buffers."""

    def __init__(self):
        self.recorded = []  # (shape, warmup) per recording

    def __call__(self, fn, static_input, warmup_iters):
        for _ in range(warmup_iters):
            fn(static_input)
        outs = tuple(o.clone() for o in fn(static_input))
        self.recorded.append((tuple(static_input.shape), warmup_iters))

        def replay():
            for buf, new in zip(outs, fn(static_input)):
                buf.copy_(new)

        return replay, outs


@pytest.fixture
def graphed():
    torch.manual_seed(0)
    model = SparseSwin(**TINY, pruning_ratios=[[.5, .5], [0, 0]]).eval()
    recorder = FakeRecorder()
    return model, recorder, CUDAGraphForward(
        model, max_graphs=2, warmup_iters=2, capture=recorder, device_types=('cpu', ))


def images(seed, shape=(72, 72)):
    return torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_new_images_replay_one_graph_with_the_new_input(graphed):
    model, recorder, wrapper = graphed
    with torch.no_grad():
        for seed in range(3):
            x = images(seed)
            assert_same(wrapper(x), model(x))
    assert recorder.recorded == [((1, 3, 72, 72), 2)]
    assert wrapper.captures == 1 and wrapper.eager_calls == 0


def test_shape_or_ratio_change_records_a_new_graph_and_old_ones_stay(graphed):
    model, recorder, wrapper = graphed
    with torch.no_grad():
        wrapper(images(0))
        x = images(1, (64, 80))
        assert_same(wrapper(x), model(x))
        assert wrapper.captures == 2
        model.set_pruning_ratios([[.3, .6], [.5, .5]])
        x = images(2, (64, 80))
        assert_same(wrapper(x), model(x))
        assert wrapper.captures == 3  # max_graphs=2: the 72x72 graph was dropped
        model.set_pruning_ratios([[.5, .5], [0, 0]])
        x = images(3, (64, 80))
        assert_same(wrapper(x), model(x))
        assert wrapper.captures == 3  # still kept
        x = images(4)
        assert_same(wrapper(x), model(x))
        assert wrapper.captures == 4


def test_outputs_are_copies_unless_asked(graphed):
    model, _, wrapper = graphed
    with torch.no_grad():
        first = wrapper(images(0))
        keep = [o.clone() for o in first]
        wrapper(images(1))
        assert_same(first, keep)  # not overwritten by the next replay
        wrapper.clone_outputs = False
        a = wrapper(images(2))
        b = wrapper(images(3))
        assert all(x.data_ptr() == y.data_ptr() for x, y in zip(a, b))


def test_training_gradients_and_other_devices_run_eagerly(graphed):
    model, recorder, wrapper = graphed
    x = images(0)
    out = wrapper(x)  # gradient mode
    assert_same(out, model(x))
    model.train()
    with torch.no_grad():
        wrapper(x)
    model.eval()
    other = CUDAGraphForward(model, capture=recorder)  # graphs CUDA only; x is on the CPU
    with torch.no_grad():
        other(x)
    assert recorder.recorded == [] and wrapper.eager_calls == 2 and other.eager_calls == 1


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match='max_graphs'):
        CUDAGraphForward(torch.nn.Identity(), max_graphs=0)
    with pytest.raises(ValueError, match='warmup_iters'):
        CUDAGraphForward(torch.nn.Identity(), warmup_iters=0)

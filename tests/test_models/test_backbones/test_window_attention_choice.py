"""``SparseSwin(fused_attention='auto')``: the attention kernel is measured once per machine, at the first
pruned forward without gradient, and the verdict is cached for later processes."""
import json

import pytest
import torch

from mmsparse.models.backbones import swin_block_timer
from mmsparse.models.backbones.window_attention_choice import attention_cache_file, pick_window_attention
from tests.tiny_models import patch2_sparse_swin as tiny_swin

PRUNED = [[.5, .5], [.5, .5], [.5] * 4, [0, 0]]
SHAPE = (56, 56)


@pytest.fixture
def verdict(monkeypatch, tmp_path):
    """The measurement replaced by a fixed verdict (op-by-op is faster), counting its calls; the cache
    in a folder of this test."""
    monkeypatch.setenv('MMSPARSE_CACHE', str(tmp_path / 'cache'))
    calls = []

    def fake_choose(backbone, input_shape, batch=1, device=None, measure=None, **kwargs):
        calls.append((tuple(input_shape), batch))
        backbone.window_options = backbone.window_options._replace(fused_attention=False)
        return dict(fused_ms=2.0, unfused_ms=1.0, fused_attention=False)

    monkeypatch.setattr(swin_block_timer, 'choose_window_attention', fake_choose)
    return calls


def images(batch=1):
    return torch.randn(batch, 3, *SHAPE, generator=torch.Generator().manual_seed(0))


def test_auto_measures_once_at_the_first_pruned_forward_without_gradient(verdict):
    model = tiny_swin(pruning_ratios=PRUNED, fused_attention='auto')
    assert model.attention_pending and model.window_options.fused_attention  # SDPA until measured
    model(images())  # with gradient (training-style forward): the fused kernel is not used, no need
    with torch.no_grad(), model.temporary_pruning_ratios(0.0):
        model(images())  # every ratio 0: mmdet's dense path, nothing to choose
    assert verdict == [] and model.attention_pending
    with torch.no_grad():
        out = model(images(2))
        model(images(2))
    assert verdict == [(SHAPE, 2)]
    assert not model.attention_pending and model.window_options.fused_attention is False
    assert model.attention_choice == dict(fused_ms=2.0, unfused_ms=1.0, fused_attention=False, measured=True)
    # the forward that measured already ran the chosen kernel: as a model built with it
    with torch.no_grad():
        same = tiny_swin(pruning_ratios=PRUNED, fused_attention=False)(images(2))
    for a, b in zip(out, same):
        assert torch.equal(a, b)


def test_a_later_model_on_the_same_machine_reads_the_cached_verdict(verdict):
    first = tiny_swin(pruning_ratios=PRUNED, fused_attention='auto')
    with torch.no_grad():
        first(images())
    table = json.load(open(attention_cache_file()))
    [(key, stored)] = table.items()
    assert 'embed 16 depths [2, 2, 4, 2]' in key and 'input 1x56x56' in key and 'CPU:' in key
    assert stored == dict(fused_attention=False, fused_ms=2.0, unfused_ms=1.0)

    second = tiny_swin(pruning_ratios=[[.2, .2], [0, 0], [0, 0, .4, .4], [0, 0]], fused_attention='auto')
    with torch.no_grad():
        second(images())
    assert len(verdict) == 1  # not measured again
    assert second.window_options.fused_attention is False and second.attention_choice['measured'] is False
    # another input shape is another key: measured for it
    third = tiny_swin(pruning_ratios=PRUNED, fused_attention='auto')
    third.pick_window_attention((64, 64))
    assert verdict[-1] == ((64, 64), 1) and len(json.load(open(attention_cache_file()))) == 2


def test_an_unreadable_cache_is_measured_again_and_rewritten(verdict, tmp_path):
    path = tmp_path / 'choices.json'
    path.write_text('{ not json')
    model = tiny_swin(pruning_ratios=PRUNED, fused_attention=True)
    with pytest.warns(UserWarning, match='not a JSON object'):
        result = pick_window_attention(model, SHAPE, cache_file=str(path))
    assert result['measured'] and len(verdict) == 1
    assert list(json.load(open(path)).values()) == [dict(fused_attention=False, fused_ms=2.0, unfused_ms=1.0)]


def test_the_latency_timer_settles_an_auto_choice_first(verdict):
    model = tiny_swin(pruning_ratios=PRUNED, fused_attention='auto')
    model.block_timer(SHAPE, warmup=1, iters=1)
    assert verdict == [(SHAPE, 1)] and model.window_options.fused_attention is False


@pytest.mark.parametrize('value', ['yes', 1, None])
def test_fused_attention_refuses_other_values(value):
    with pytest.raises(ValueError, match=r"fused_attention must be True, False or 'auto'"):
        tiny_swin(fused_attention=value)


def test_an_operator_count_does_not_count_the_measurement(verdict):
    from torch.utils.flop_counter import FlopCounterMode
    model = tiny_swin(pruning_ratios=PRUNED, fused_attention='auto')
    with torch.no_grad(), FlopCounterMode(display=False):
        model(images())
    assert verdict == [] and model.attention_pending  # measured at the first uncounted forward
    with torch.no_grad():
        model(images())
    assert len(verdict) == 1

"""ONNX export at fixed sparsity: onnxruntime (CPU) equals PyTorch eager, the graph ranks windows / tokens
with constant-k TopK (no Sort, no data-dependent shapes), and the file records ratios and input shape.

Models are shrunk (Swin embed 16, depths 2-2-2-2; DeiT C 64, depth 2) so each export takes seconds; the
input 128x160 pads stage 0 (32x40 tokens -> 35x42) and stage 1 (16x20 -> 21x21).
"""
import json

import pytest
import torch

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

from mmsparse.deployment import (TENSORRT_MAX_TOPK, build_model, check_exported_graph, export_onnx,
                                 export_part, read_metadata, run_onnxruntime)
from mmsparse.sparsity.window_selection import num_kept_windows, stage_geometry, stage_hw
from tests.tiny_models import TINY_DEIT
from tests.tool_runner import REPO_ROOT

SHAPE = (128, 160)
DEPTHS = (2, 2, 2, 2)
RATIOS = {
    'dense': None,
    'cfg2-like': [[.6, .6], [0, 0], [.2, .4], [0, 0]],
    'uniform-0.5': 0.5,
}
SWIN = {
    'model.backbone.embed_dims': 16,
    'model.backbone.depths': list(DEPTHS),
    'model.backbone.num_heads': [1, 1, 2, 2],
    'model.backbone.drop_path_rate': 0.0
}
CLS_OPTIONS = dict(SWIN, **{'model.head.in_channels': 128})
SEG_OPTIONS = dict(
    SWIN, **{
        'model.decode_head.in_channels': [16, 32, 64, 128],
        'model.decode_head.channels': 16,
        'model.auxiliary_head.in_channels': 64,
        'model.auxiliary_head.channels': 16
    })
ATOL = 1e-4

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _randomize_(model, seed=0):
    """Non-trivial norms and position tables (fresh ones are 1/0/0), so padding and bias matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'relative_position_bias_table' in name or name.endswith('bias'):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif 'norm' in name and name.endswith('weight'):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
    return model


def _build(config, options):
    torch.manual_seed(0)
    _, model = build_model(f'{REPO_ROOT}/configs/sparsevit/{config}', cfg_options=options)
    return _randomize_(model).eval()


def _images(batch=1, shape=SHAPE, seed=0):
    return torch.randn(batch, 3, *shape, generator=torch.Generator().manual_seed(seed))


def _export_and_run(module, x, path, metadata=None):
    """Export (without onnxscript's optimiser, to keep tests fast), then run both."""
    proto = export_onnx(module, x, str(path), metadata, optimize=False)
    with torch.no_grad():
        ref = module(x)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    got = [torch.from_numpy(a) for a in run_onnxruntime(str(path), x, threads=1)]
    return proto, ref, got


def _expected_topk(ratios, min_keep, shape=SHAPE, window_size=7):
    """Sorted k of every TopK the backbone needs: per stage on the window path, the most any block of
    each parity keeps (one ranking per parity; a parity that keeps nothing needs none)."""
    from mmsparse.sparsity.ratios import validate_pruning_ratios
    ks = []
    for s, stage in enumerate(validate_pruning_ratios(ratios, DEPTHS)):
        if all(r == 0 for r in stage):
            continue
        nw = stage_geometry(*stage_hw(shape, s), window_size).num_windows
        keep = [num_kept_windows(nw, r, min_keep=min_keep) for r in stage]
        ks += [k for k in (max(keep[0::2]), max(keep[1::2])) if k > 0]
    return sorted(ks)


def _assert_close(ref, got):
    assert len(ref) == len(got)
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        torch.testing.assert_close(g, r, rtol=0, atol=ATOL)


@pytest.mark.parametrize('name', list(RATIOS))
def test_classifier_onnxruntime_equals_eager(name, tmp_path):
    model = _build('swin_t_in1k_toy.py', CLS_OPTIONS)
    model.backbone.set_pruning_ratios(RATIOS[name])
    proto, ref, got = _export_and_run(
        export_part(model, 'model'), _images(batch=2), tmp_path / 'cls.onnx',
        dict(pruning_ratios=model.backbone.get_pruning_ratios()))
    _assert_close(ref, got)
    found = check_exported_graph(proto)
    assert 'Sort' not in found['op_counts'] and 'NonZero' not in found['op_counts']
    assert sorted(found['topk_k']) == _expected_topk(RATIOS[name], model.backbone.window_options.min_keep)
    assert all(k <= TENSORRT_MAX_TOPK for k in found['topk_k'])
    if name != 'dense':
        ops = found['op_counts']
        assert ops.get('TopK', 0) > 0 and ops.get('ScatterND', 0) + ops.get('ScatterElements', 0) > 0
        assert ops.get('Gather', 0) + ops.get('GatherND', 0) + ops.get('GatherElements', 0) > 0


@pytest.mark.parametrize('name', ['cfg2-like'])  # uniform: test_export_tool_... below
def test_segmentor_onnxruntime_equals_eager(name, tmp_path):
    model = _build('upernet_swin_t_ade20k_toy.py', SEG_OPTIONS)
    model.backbone.set_pruning_ratios(RATIOS[name])
    proto, ref, got = _export_and_run(export_part(model, 'model'), _images(), tmp_path / 'seg.onnx')
    assert ref[0].shape == (1, 4, *SHAPE)  # logits at the input size
    _assert_close(ref, got)
    min_keep = model.backbone.window_options.min_keep
    assert sorted(check_exported_graph(proto)['topk_k']) == _expected_topk(RATIOS[name], min_keep)


def test_export_tool_segmentor_uniform_records_ratios_and_shape(tmp_path):
    """The command-line path at uniform 0.5: default part for a segmentor, onnxruntime equals eager,
    and the metadata records the ratios (per block), the input shape and the normalisation."""
    from tools.deployment.export_onnx import export
    out = tmp_path / 'seg.onnx'
    meta, diff = export(
        f'{REPO_ROOT}/configs/sparsevit/upernet_swin_t_ade20k_toy.py',
        'none',
        'uniform-0.5',
        SHAPE,
        str(out),
        cfg_options=SEG_OPTIONS,
        optimize=False,
        threads=1)
    assert diff is not None and diff <= ATOL
    stored = read_metadata(str(out))
    assert stored == json.loads(json.dumps(meta, default=list)) | dict(input_shape=[1, 3, *SHAPE], opset=18)
    assert stored['pruning_ratios'] == [[0.5] * d for d in DEPTHS] and stored['ratios_name'] == 'uniform-0.5'
    assert stored['part'] == 'model' and stored['model'] == 'EncoderDecoder'
    assert stored['preprocess']['mean'] == [123.675, 116.28, 103.53]


def test_detector_whole_model_is_refused_with_the_reason():
    model = _build('maskrcnn_swin_t_toy.py', {'model.backbone.drop_path_rate': 0.0})
    with pytest.raises(ValueError, match='NMS / RoIAlign.*--part features'):
        export_part(model, 'model')


def test_exported_window_ranking_keeps_the_eager_windows(monkeypatch):
    """With ``is_exporting`` forced on, SparseSwin ranks with TopK: the kept windows (recorded per block)
    are those of the stable-sort ranking, in the same order (random features: no exact ties)."""
    from mmsparse.models.backbones import SparseSwin, sparse_swin_stage
    torch.manual_seed(0)
    model = _randomize_(
        SparseSwin(
            embed_dims=16,
            depths=DEPTHS,
            num_heads=(1, 1, 2, 2),
            drop_path_rate=0.,
            pruning_ratios=RATIOS['cfg2-like'],
            record_selection=True)).eval()
    x = _images(batch=2)
    with torch.no_grad():
        eager = model(x)
        eager_sel = model.last_selection
        monkeypatch.setattr(sparse_swin_stage, 'is_exporting', lambda: True)
        topk = model(x)
        topk_sel = model.last_selection
    for stage_a, stage_b in zip(eager_sel, topk_sel):
        for a, b in zip(stage_a, stage_b):
            assert (a is None) == (b is None)
            if a is not None:
                assert torch.equal(a, b)
    for a, b in zip(eager, topk):
        assert torch.equal(a, b)


def test_topk_ranking_differs_from_stable_only_among_ties():
    from mmsparse.sparsity.window_selection import top_windows
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (4, 50), generator=g).float()  # many exact ties
    for k in (1, 7, 25, 50):
        a, b = top_windows(scores, k, stable=True), top_windows(scores, k, stable=False)
        # same kept scores in the same (descending) order, whatever windows the ties picked
        assert torch.equal(scores.gather(1, a), scores.gather(1, b))
    scores = torch.randn(4, 50, generator=g)  # no ties: identical windows
    assert torch.equal(top_windows(scores, 20, stable=True), top_windows(scores, 20, stable=False))


# ---------------------------------------------------------------- SViTE

DEIT = dict(arch=TINY_DEIT, img_size=32, patch_size=8)


def _deit(**kwargs):
    from mmsparse.models.backbones import SparseDeiT
    torch.manual_seed(0)
    model = SparseDeiT(**DEIT, **kwargs)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    if model.structured:
        model.apply_structured_masks()  # the perturbation above touched the pruned slices
    model.eval()
    return model


def test_compact_s2vite_onnxruntime_equals_eager(tmp_path):
    from mmsparse.deployment.parts import BackbonePart
    model = _deit(structured=dict(head_density=0.75, mlp_density=0.5))
    compact, _ = model.export_compact()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    compact.eval()
    proto, ref, got = _export_and_run(BackbonePart(compact), x, tmp_path / 'compact.onnx')
    _assert_close(ref, got)
    with torch.no_grad():
        torch.testing.assert_close(got[0], model(x)[0], rtol=0, atol=ATOL)  # == the masked model
    assert 'TopK' not in check_exported_graph(proto)['op_counts']


def test_token_selector_exports_as_topk_and_keeps_the_eager_tokens(tmp_path):
    from mmsparse.deployment.parts import BackbonePart
    model = _deit(token_selector=dict(num_tokens=9))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    proto, ref, got = _export_and_run(BackbonePart(model), x, tmp_path / 'tokens.onnx')
    _assert_close(ref, got)
    found = check_exported_graph(proto)
    # keep the 8 best of 16 patches, then order their positions: two TopK with k = 8
    assert found['topk_k'] == [8, 8] and 'Sort' not in found['op_counts']

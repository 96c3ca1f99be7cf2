"""benchmark_backbone.py on a narrow Swin: rows, MACs columns and the ratio-0 check (no timing asserts).

The MACs columns are checked against what torch's FlopCounterMode counts on the modules the benchmark
runs, not against the cost model that computed them.
"""
import json

import pytest
import torch

from mmsparse.sparsity.cost import swin_macs
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS, dense_ratios, named_or_json_ratios
from tests.counted_macs import counted_macs, dense_path_padded_ffn_macs
from tests.tiny_models import TINY_SWIN_T, write_backbone_config
from tests.tool_runner import load_tool

TOOL = 'tools/analysis_tools/benchmark_backbone.py'


def tiny_swin_config(tmp_path, embed_dims):
    """A config file whose backbone is a narrow mmdet Swin of Swin-T depth (the benchmark's input)."""
    return write_backbone_config(tmp_path / 'tiny_swin.py', dict(TINY_SWIN_T, embed_dims=embed_dims))


def counted_gmacs(tool, cfg, shape, names):
    """``{row name: GMACs}`` in the analytic model's convention, from FlopCounterMode on the benchmark's
    own dense mmdet Swin and SparseSwin at each ratio set: the count plus the FFN of padded tokens that
    dense-path blocks skip (the one documented gap, see tests/counted_macs.py)."""
    backbone = tool.load_backbone_cfg(str(cfg))
    dense, sparse = tool.build_models(backbone, seed=0, device=torch.device('cpu'))
    x = torch.randn(1, 3, *shape)
    c0 = backbone['embed_dims']
    out = {
        'dense mmdet Swin':
        counted_macs(dense, x) + dense_path_padded_ffn_macs(shape, dense_ratios(sparse.depths), c0)
    }
    for name in names:
        sparse.set_pruning_ratios(named_or_json_ratios(name))
        ratios = sparse.get_pruning_ratios()
        out[name] = counted_macs(sparse, x) + dense_path_padded_ffn_macs(shape, ratios, c0)
    return {name: macs / 1e9 for name, macs in out.items()}


def test_benchmark_rows(tmp_path, capsys):
    tool = load_tool(TOOL)
    cfg = tiny_swin_config(tmp_path, embed_dims=32)
    out = tmp_path / 'rows.json'
    rc = tool.main([
        str(cfg), '--shape', '112', '160', '--repeat', '2', '--warmup', '0', '--threads', '1', '--ratios',
        'dense', 'cfg2', 'uniform-0.5', '[[0.1,0.1],[0,0],[0,0,0,0,0,0],[0,0]]', '--json',
        str(out)
    ])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data['max_abs_diff_ratio0'] == 0
    rows = {r['name']: r for r in data['rows']}
    assert list(rows)[:4] == ['dense mmdet Swin', 'dense', 'cfg2', 'uniform-0.5']
    # the core column against the modules that ran (112x160 pads at every stage, so the padded-FFN
    # gap is in play); exact integers, so only float division separates the two
    counted = counted_gmacs(tool, cfg, (112, 160), list(rows)[1:])
    assert {name: r['gmacs_core'] for name, r in rows.items()} == pytest.approx(counted, rel=1e-12)
    assert rows['dense']['gmacs_core'] == rows['dense mmdet Swin']['gmacs_core']
    for r in rows.values():
        assert r['mac_ratio'] == pytest.approx(rows['dense']['gmacs_core'] / r['gmacs_core'])
    assert rows['dense']['mac_ratio'] == 1.0
    # the paper convention adds the LayerNorm and q-scaling outputs, which FlopCounterMode does not
    # count; test_cost.py checks that convention against the paper's tables
    assert rows['cfg2']['gmacs_paper'] == pytest.approx(
        swin_macs((112, 160), PUBLISHED_RATIOS['cfg2'], convention='paper', embed_dims=32) / 1e9)
    for r in rows.values():
        assert r['min_ms'] <= r['median_ms'] and r['speedup'] > 0
    printed = capsys.readouterr().out
    assert 'max abs diff 0 (bit-identical)' in printed
    assert printed.count('\n| ') == 1 + len(rows)  # header + one row per set


def test_benchmark_bf16_autocast(tmp_path):
    # bf16 autocast: the fused kernel gets its additive mask in the query dtype; ratio 0 stays exact
    tool = load_tool(TOOL)
    cfg = tiny_swin_config(tmp_path, embed_dims=32)
    out = tmp_path / 'rows.json'
    assert tool.main([
        str(cfg), '--shape', '112', '144', '--repeat', '1', '--warmup', '0', '--threads', '1', '--amp',
        '--ratios', 'cfg2', '--json',
        str(out)
    ]) == 0
    assert json.loads(out.read_text())['max_abs_diff_ratio0'] == 0


def test_benchmark_compiled_rows_match_eager(tmp_path, capsys):
    # aot_eager: the same dynamo graphs as inductor (fullgraph, one per ratio set) in seconds
    tool = load_tool(TOOL)
    cfg = tiny_swin_config(tmp_path, embed_dims=16)
    out = tmp_path / 'rows.json'
    assert tool.main([
        str(cfg), '--shape', '112', '112', '--repeat', '1', '--warmup', '0', '--threads', '1', '--ratios',
        'cfg2', 'uniform-0.5', '--compile', '--compile-backend', 'aot_eager', '--json',
        str(out)
    ]) == 0
    rows = json.loads(out.read_text())['rows']
    names = ['dense mmdet Swin', 'cfg2', 'uniform-0.5']
    assert [(r['kind'], r['name']) for r in rows] == [('eager', n) for n in names] + [('compiled', n)
                                                                                      for n in names]
    for r in rows:
        if r['kind'] == 'compiled':
            assert r['max_abs_diff_vs_eager'] <= 1e-4 and r['first_call_s'] > 0
        else:
            assert r['max_abs_diff_vs_eager'] is None
    assert '| cfg2 (compiled) |' in capsys.readouterr().out


def test_benchmark_cuda_graph_needs_cuda(tmp_path):
    tool = load_tool(TOOL)
    with pytest.raises(SystemExit):
        tool.parse_args([str(tmp_path / 'x.py'), '--cuda-graph'])

"""benchmark_backbone.py on a narrow Swin: rows, MACs columns and the ratio-0 check (no timing asserts)."""
import importlib.util
import json
import os.path as osp

import pytest

from mmsparse.sparsity.cost import swin_macs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_backbone.py')
    spec = importlib.util.spec_from_file_location('benchmark_backbone', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_swin_config(tmp_path, embed_dims):
    """A config file whose backbone is a narrow mmdet Swin of Swin-T depth (the benchmark's input)."""
    cfg = tmp_path / 'tiny_swin.py'
    cfg.write_text(f"model = dict(backbone=dict(type='SwinTransformer', embed_dims={embed_dims}, "
                   'num_heads=(1, 2, 4, 8), depths=(2, 2, 6, 2)))\n')
    return cfg


def test_benchmark_rows(tmp_path, capsys):
    tool = _load_tool()
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
    kw = dict(embed_dims=32)
    dense = swin_macs((112, 160), None, **kw)
    assert rows['dense']['gmacs_core'] == pytest.approx(dense / 1e9)
    cfg2 = [[.6, .6], [0, 0], [.2, .2, .4, .4, .5, .5], [0, 0]]
    assert rows['cfg2']['gmacs_core'] == pytest.approx(swin_macs((112, 160), cfg2, **kw) / 1e9)
    assert rows['cfg2']['gmacs_paper'] == pytest.approx(
        swin_macs((112, 160), cfg2, convention='paper', **kw) / 1e9)
    uniform = [[.5] * 2, [.5] * 2, [.5] * 6, [.5] * 2]
    assert rows['uniform-0.5']['mac_ratio'] == pytest.approx(dense / swin_macs((112, 160), uniform, **kw))
    assert rows['dense']['mac_ratio'] == 1.0
    for r in rows.values():
        assert r['min_ms'] <= r['median_ms'] and r['speedup'] > 0
    printed = capsys.readouterr().out
    assert 'max abs diff 0 (bit-identical)' in printed
    assert printed.count('\n| ') == 1 + len(rows)  # header + one row per set


def test_benchmark_bf16_autocast(tmp_path):
    # bf16 autocast: the fused kernel gets its additive mask in the query dtype; ratio 0 stays exact
    tool = _load_tool()
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
    tool = _load_tool()
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
    tool = _load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args([str(tmp_path / 'x.py'), '--cuda-graph'])

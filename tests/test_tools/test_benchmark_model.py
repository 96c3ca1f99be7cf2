"""benchmark_model.py's MAC columns: our analytic backbone model and torch's FlopCounterMode on the
executed modules agree exactly on a geometry without padding (224 px: 56/28/14/7 tokens per side), for
the dense package Swin and for SparseSwin at pruned ratios. No timing is asserted."""
import json

import pytest

from tests.tool_runner import REPO_ROOT

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def test_analytic_backbone_macs_equal_flop_counter(tmp_path):
    from tools.analysis_tools.benchmark_model import main
    out = tmp_path / 'rows.json'
    assert main([
        f'{REPO_ROOT}/configs/sparsevit/swin_t_in1k_toy.py', '--ratios', 'cfg2', '0.5', '--shape', '224',
        '224', '--repeat', '1', '--warmup', '0', '--json',
        str(out)
    ]) == 0
    rows = json.loads(out.read_text())['rows']
    assert [r['name'] for r in rows] == ['dense (package Swin)', 'cfg2', '0.5']
    for r in rows:
        assert r['backbone_gmacs_counted'] == pytest.approx(
            r['backbone_gmacs_analytic'], rel=1e-12), r['name']
        # the head (GAP + Linear 256 -> 8) adds 2048 MACs to the backbone
        assert r['whole_gmacs_counted'] * 1e9 == pytest.approx(
            r['backbone_gmacs_counted'] * 1e9 + 256 * 8, abs=0.5)
    dense, cfg2, half = rows
    macs = [r['backbone_gmacs_analytic'] for r in (dense, cfg2, half)]
    assert macs[0] > macs[1] > macs[2]
    # the Amdahl bound follows from the row's own numbers; the share is capped at 1 (with one timed
    # round the backbone alone can time slower than the whole model, as it did once in a full run)
    p = min(dense['backbone_share'], 1.0)
    for r in rows:
        assert r['amdahl_bound'] == pytest.approx(1 / ((1 - p) + p / r['backbone_speedup']))

"""demo_summary.py and the demo's tables: Pareto points with dense and chosen marked, one summary PNG."""
import json
import os

import numpy as np
from PIL import Image

from tests.tool_runner import load_tool


def _search_dir(tmp_path):
    hist = [
        dict(genes=[0.1], feasible=True, constraints=dict(macs=0.39), fitness=0.70, generation=0),
        dict(genes=[0.2], feasible=True, constraints=dict(macs=0.35), fitness=0.72, generation=0),
        dict(genes=[0.3], feasible=True, constraints=dict(macs=0.30), fitness=0.60, generation=1),
        dict(genes=[0.4], feasible=False, constraints=dict(macs=0.50), fitness=None, generation=1)
    ]
    (tmp_path / 'search_history.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in hist))
    best = dict(
        score_key='coco/bbox_mAP',
        fitness=0.72,
        genes=[0.2],
        constraints=dict(macs=0.35),
        references=dict(
            dense=dict(genes=[0.0], feasible=False, constraints=dict(macs=0.53), fitness=0.80),
            uniform_05=dict(genes=[0.5], feasible=True, constraints=dict(macs=0.25), fitness=0.40)))
    (tmp_path / 'best_ratios.json').write_text(json.dumps(best))
    return tmp_path


def test_front_goes_through_every_non_dominated_point_including_dense(tmp_path):
    tool = load_tool('tools/analysis_tools/demo_summary.py')
    search = _search_dir(tmp_path)
    Image.fromarray(np.zeros((50, 80, 3), np.uint8)).save(tmp_path / 'kept.png')
    table = '| model | AP |\n|---|---|\n| dense | 0.8 |\n| searched | 0.72 |\n\n| other | t |\n|---|---|\n'
    pts, front = tool.draw_summary(
        str(tmp_path / 'summary.png'), str(search), str(tmp_path / 'kept.png'), table)
    kinds = {p[2]: (p[0], p[1]) for p in pts}
    assert kinds['chosen'] == (0.35, 0.72) and kinds['dense'] == (0.53, 0.80)
    assert len(pts) == 5  # 2 candidates + chosen (same genes as one candidate) + 2 references
    # cheaper-and-better test by hand: 0.39/0.70 is beaten by 0.35/0.72
    assert [(p[0], p[1]) for p in front] == [(0.25, 0.40), (0.30, 0.60), (0.35, 0.72), (0.53, 0.80)]
    assert Image.open(tmp_path / 'summary.png').size == (2400, 1300)
    assert tool.first_table(table) == [['model', 'AP'], ['dense', '0.8'], ['searched', '0.72']]


def test_demo_recall_table_and_results_table():
    demo = load_tool('tools/demo.py')
    recall = dict(
        images=['a.jpg', 'b.jpg'],
        num_draws=8,
        seed=0,
        stages=[dict(stage=0, object_recall=0.95, random_recall=0.31, chance=0.297)])
    text = demo.recall_table(recall)
    assert '| 0 | 0.950 | 0.310 | 0.297 |' in text and 'on 2 val images' in text
    d = demo.Demo.__new__(demo.Demo)
    d.task = dict(metrics={'bbox AP': 'coco/bbox_mAP'})
    bench = dict(gmacs_core=0.5, median_ms=20.0)
    whole_dense = dict(whole_ms=50.0, whole_speedup=1.0, amdahl_bound=1.0)
    whole_sparse = dict(whole_ms=40.0, whole_speedup=1.25, amdahl_bound=1.25)
    table = d.table([('dense', 'dense', bench, whole_dense, {
        'coco/bbox_mAP': 0.8
    }, None),
                     ('searched', '[..]', dict(gmacs_core=0.3, median_ms=10.0), whole_sparse, {
                         'coco/bbox_mAP': 0.7
                     }, recall)])
    rows = table.splitlines()
    # the whole-model columns come from benchmark_model's rows as they are, next to the backbone's
    assert rows[2] == '| dense | dense | 0.500 | 20.0 | 0.800 | 1.00x | 50.0 | 1.00x (1.00x) | 1 (1) |'
    assert rows[
        3] == '| searched | [..] | 0.300 | 10.0 | 0.700 | 2.00x | 40.0 | 1.25x (1.25x) | 0.950 (0.310) |'


def test_demo_regenerates_data_made_by_another_generator_command_and_keeps_the_old_folder(tmp_path):
    demo = load_tool('tools/demo.py')
    d = demo.Demo.__new__(demo.Demo)
    d.task = dict(generator=['make_toy.py', '--seed', '0'])
    d.data = str(tmp_path / 'toy')
    runs = []

    def fake_run(step, cmd):  # stands in for the generator: writes one file into --out
        runs.append(cmd)
        os.makedirs(cmd[cmd.index('--out') + 1])
        (tmp_path / 'toy' / 'made').write_text(str(len(runs)))

    d.run = fake_run
    d.generate_data()
    d.generate_data()  # same command: the folder is reused
    assert runs == [['make_toy.py', '--out', d.data, '--seed', '0']]
    d.task = dict(generator=['make_toy.py', '--seed', '1'])
    d.generate_data()  # another command: generated again, the old folder kept aside
    assert len(runs) == 2 and (tmp_path / 'toy' / 'made').read_text() == '2'
    old = [p for p in os.listdir(tmp_path) if p.startswith('toy.old-')]
    assert len(old) == 1 and (tmp_path / old[0] / 'made').read_text() == '1'

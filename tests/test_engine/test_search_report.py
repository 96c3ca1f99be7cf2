"""Outputs of the evolution search: fine-tune config text, atomic writes, Pareto plot."""
import json

from mmengine.config import Config

from mmsparse.engine.loops.search_report import atomic_write, finetune_config_text, plot_pareto
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS

RATIOS = PUBLISHED_RATIOS['cfg2']


def test_finetune_config_binds_every_backbone(tmp_path):
    base = tmp_path / 'task.py'
    base.write_text("model = dict(type='M', img_backbone=dict(type='B', depth=1), pruning_ratios=None)\n"
                    "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4))\n")
    text = finetune_config_text(
        str(base), ['img_backbone', ''],
        RATIOS,
        custom_hooks=[],
        overrides=dict(optim_wrapper=dict(optimizer=dict(lr=1e-5))),
        header='# h')
    path = tmp_path / 'finetune_task.py'
    path.write_text(text)
    cfg = Config.fromfile(str(path))
    assert cfg.model.img_backbone == dict(type='B', depth=1, pruning_ratios=RATIOS)
    assert cfg.model.pruning_ratios == RATIOS  # '' = the model itself
    assert cfg.custom_hooks == [] and cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-5)
    assert text.startswith('# h\n_base_ = ')


def test_atomic_write_and_pareto_plot(tmp_path):
    path = tmp_path / 'x.json'
    atomic_write(str(path), json.dumps([1]))
    atomic_write(str(path), json.dumps([2]))
    assert json.loads(path.read_text()) == [2] and sorted(p.name for p in tmp_path.iterdir()) == ['x.json']
    genes = lambda v: {'s0': v}  # noqa: E731
    history = [
        dict(genes=genes(.1), feasible=True, fitness=1.0, constraints={'macs': 10.0}, generation=0),
        dict(genes=genes(.2), feasible=True, fitness=2.0, constraints={'macs': 12.0}, generation=1),
        dict(genes=genes(.2), feasible=True, fitness=2.0, constraints={'macs': 12.0}, generation=1),
        dict(genes=genes(.3), feasible=False, fitness=None, constraints={'macs': 30.0}, generation=1)
    ]
    pts = plot_pareto(
        str(tmp_path / 'p.png'), history, 'macs', 'score',
        dict(dense=dict(fitness=3.0, constraints={'macs': 40.0})))
    assert pts == [(10.0, 1.0), (12.0, 2.0)]  # feasible, each configuration once
    assert (tmp_path / 'p.png').read_bytes()[:4] == b'\x89PNG'

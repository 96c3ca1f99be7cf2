"""tools/search.py end to end on the toy search task of tests/test_engine/test_evolution_search_loop.py."""
import json
import os.path as osp
import sys

import pytest
import torch

from tests.tiny_models import PATCH2_SWIN, config_kwargs
from tests.tool_runner import data_root_options, load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

# the toy model, dataset and metric (registering them in mmengine's registries)
toy = load_tool('tests/test_engine/test_evolution_search_loop.py', name='_toy_search_task')

CONFIG = """
default_scope = 'mmengine'
model = dict(type='ToyModel')
val_dataloader = dict(dataset=dict(type='ToySearchDataset'), sampler=dict(type='DefaultSampler',
                      shuffle=False), batch_size=4, num_workers=0)
val_evaluator = dict(type='ToySearchMetric')
val_cfg = dict(type='ValLoop')
log_level = 'WARNING'
search_loop = dict(score_key='toy/score', population=8, parents=3, generations=2,
                   input_shape=(672, 672), val_subset=6, report_references=False)
"""


@pytest.fixture
def task(tmp_path):
    cfg = tmp_path / 'toy_search_task.py'
    cfg.write_text(CONFIG)
    # an "SAA checkpoint": backbone.weight = 0.5 shifts every score by 0.5 once loaded
    model = toy.ToyModel()
    model.backbone.weight.data.fill_(0.5)
    ckpt = tmp_path / 'saa.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return str(cfg), str(ckpt)


def test_search_tool(task, tmp_path):
    import search
    cfg, ckpt = task
    work = tmp_path / 'w'
    search.main([
        cfg, ckpt, '--work-dir',
        str(work), '--constraint', 'macs', '--budget', '28', '--cfg-options', 'experiment_name=search_tool',
        'search_loop.seed=3'
    ])
    best = json.loads((work / 'best_ratios.json').read_text())
    history = [json.loads(line) for line in (work / 'search_history.jsonl').read_text().splitlines()]
    assert sum(r['joined'] for r in history) == 16  # 2 populations of 8
    assert best['constraints']['macs'] <= 28
    # the checkpoint was loaded: fitness = toy score on the 6-sample subset + 0.5
    assert best['fitness'] == pytest.approx(toy.expected_fitness(best['pruning_ratios']) + 0.5)
    assert (work / 'pareto.png').stat().st_size > 0
    assert (work / 'finetune_toy_search_task_macs28.py').is_file()
    # --resume on a finished search evaluates nothing new and reproduces the outputs
    search.main([
        cfg, ckpt, '--work-dir',
        str(work), '--budget', '28', '--resume', '--cfg-options', 'experiment_name=search_tool_resumed',
        'search_loop.seed=3'
    ])
    assert json.loads((work / 'best_ratios.json').read_text()) == best
    # a resume with another budget is refused: cached feasibility would be wrong
    with pytest.raises(ValueError, match='fingerprint'):
        search.main([
            cfg, ckpt, '--work-dir',
            str(work), '--budget', '30', '--resume', '--cfg-options', 'experiment_name=search_tool_other',
            'search_loop.seed=3'
        ])


def test_search_tool_needs_a_budget(task, tmp_path):
    import search
    cfg, ckpt = task
    with pytest.raises(ValueError, match='--budget'):
        search.main([cfg, ckpt, '--work-dir', str(tmp_path / 'w2')])


TOY_CLS = osp.join(ROOT, 'configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py')
SWIN_CLS = """_base_ = '{base}'
# a tiny SparseSwin: patch 2 at 32x32 gives nW 9/4/1/1
model = dict(
    backbone=dict(_delete_=True, type='mmsparse.SparseSwin', {swin}, out_indices=(3, ), min_keep=1),
    # mmdet's Swin (and SparseSwin) returns a list; mmpretrain's GAP neck takes a tuple
    neck=dict(type='ListGlobalAveragePooling'),
    head=dict(in_channels=128))
custom_imports = dict(imports=['mmsparse', 'tests.test_tools.search_toy_modules'], allow_failed_imports=False)
search_loop = dict(score_key='accuracy/top1', population=6, parents=2, generations=2,
                   input_shape=(32, 32), seed=0)
"""


def test_search_tool_on_toy_classifier_one_and_two_processes(toy_imagenet, tmp_path):
    """tools/search.py and tools/dist_search.sh on a real mmpretrain classifier with a SparseSwin:
    the task's own dataloader and Accuracy metric score the candidates; 2 ranks = 1 rank."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from tests.tool_runner import run_tool
    config = tmp_path / 'sparse-swin_toy-imagenet.py'
    config.write_text(SWIN_CLS.format(base=TOY_CLS, swin=config_kwargs(PATCH2_SWIN)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import MODELS

        import mmsparse.models  # noqa: F401
        import tests.test_tools.search_toy_modules  # noqa: F401
        torch.manual_seed(0)
        model = MODELS.build(Config.fromfile(str(config)).model)
    ckpt = tmp_path / 'saa.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    data = data_root_options(toy_imagenet)
    runs = {}
    for name, launcher in (('one', ['search.py']), ('two', ['dist_search.sh'])):
        work = tmp_path / name
        args = [str(config), str(ckpt)] + (['2'] if name == 'two' else []) + [
            '--work-dir', str(work), '--budget', '0.024', '--cfg-options'
        ] + data
        run_tool(launcher + args, env=dict(PORT='29541', OMP_NUM_THREADS='1'))
        runs[name] = [json.loads(line) for line in (work / 'search_history.jsonl').read_text().splitlines()]
    assert runs['one'] == runs['two']
    history = runs['one']
    assert sum(r['joined'] for r in history) == 12
    assert all(r['feasible'] == (r['constraints']['macs'] <= 0.024) for r in history)
    assert all(0 <= r['fitness'] <= 100 for r in history if r['feasible'])
    best = json.loads((tmp_path / 'one' / 'best_ratios.json').read_text())
    assert best['score_key'] == 'accuracy/top1' and best['constraints']['macs'] <= 0.024
    ft = Config.fromfile(str(tmp_path / 'one' / 'finetune_sparse-swin_toy-imagenet_macs0.024.py'))
    assert ft.model.backbone.type == 'mmsparse.SparseSwin'
    assert ft.model.backbone.pruning_ratios == best['pruning_ratios']


@pytest.mark.parametrize('config', [
    'configs/sparsevit/maskrcnn_swin_t_search_toy.py', 'configs/sparsevit/upernet_swin_t_ade20k_search.py',
    'configs/sparsevit/pgd_swin_t_kitti_mono3d_search.py', 'configs/sparsevit/swin_t_in1k_search.py'
])
def test_train_tool_refuses_a_search_config_and_names_search_py(config):
    train = load_tool('tools/train.py', name='_train_tool')
    with pytest.raises(ValueError, match=r'is a search config .*tools/search\.py'):
        train.main([config])

"""The SparseViT configs state each thing once: SparseSwin-T in ``configs/_base_/models/sparse_swin_t.py``
(or a type swap where the recipe already has mmdet's Swin-T arguments), ratio sets by name, the SAA hook
and the search loop with only what differs from their defaults, and one search entry point
(``search_loop``, which ``tools/search.py`` turns into the run's ``train_cfg``)."""
import ast
import copy
import glob
import inspect
import os
import os.path as osp
import sys
import types

import pytest
import torch
from mmengine.config import Config

from mmsparse.sparsity.ratios import PUBLISHED_RATIOS, validate_pruning_ratios
from tests.tool_runner import REPO_ROOT, load_tool

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
SPARSEVIT = sorted(glob.glob(osp.join(CONFIG_DIR, 'sparsevit', '*.py')))
ALL_CONFIGS = sorted(p for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True))
SEARCH = [p for p in SPARSEVIT if '_search' in osp.basename(p)]
SAA = [p for p in SPARSEVIT if '_saa' in osp.basename(p)]
SWIN_T_DEPTHS = (2, 2, 6, 2)
HOOK = 'mmsparse.SparsityAwareAdaptationHook'


def ids(paths):
    return [osp.relpath(p, CONFIG_DIR) for p in paths]


@pytest.fixture(scope='module')
def merged():
    """Every SparseViT config, parsed once (path -> Config)."""
    import mmsparse  # noqa: F401  (custom_imports)
    return {p: Config.fromfile(p) for p in SPARSEVIT}


@pytest.fixture(scope='module')
def search_tool():
    """tools/search.py as a module; the environment and ``sys.path`` it sets on import are restored."""
    env, path = dict(os.environ), list(sys.path)
    try:
        yield load_tool('tools/search.py', 'search_tool')
    finally:
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = path


def _nested_floats(value):
    if isinstance(value, (list, tuple)):
        return [_nested_floats(v) for v in value]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def test_no_config_spells_out_a_named_ratio_set():
    """A literal list equal to a set of ``PUBLISHED_RATIOS`` is written by its name instead."""
    named = {
        name: _nested_floats(r)
        for name, r in PUBLISHED_RATIOS.items() if isinstance(r, list) and name != 'dense'
    }
    found = []
    for path in ALL_CONFIGS:
        for node in ast.walk(ast.parse(open(path).read())):
            if not isinstance(node, ast.List):
                continue
            try:
                value = _nested_floats(ast.literal_eval(node))
            except ValueError:
                continue
            found += [
                f'{osp.relpath(path, CONFIG_DIR)}:{node.lineno} is {name!r}' for name, r in named.items()
                if value == r
            ]
    assert not found, 'write these as names: ' + '; '.join(found)


def test_ratio_names_reach_the_built_backbone(merged):
    """Every config that names a ratio set builds a SparseSwin running exactly that set."""
    from mmsparse.registry import MODELS
    named = {p: cfg for p, cfg in merged.items() if isinstance(cfg.model.backbone.get('pruning_ratios'), str)}
    assert {osp.basename(p)
            for p in named} >= {
                'maskrcnn_swin_t_cfg1_finetune.py', 'maskrcnn_swin_t_cfg2_finetune.py',
                'maskrcnn_swin_t_cfg3_finetune.py', 'swin_t_in1k_finetune.py',
                'upernet_swin_t_ade20k_finetune_toy.py', 'pgd_swin_t_kitti_mono3d_finetune.py'
            }
    for path, cfg in named.items():
        backbone = cfg.model.backbone.to_dict()
        backbone.pop('_scope_', None)
        backbone['init_cfg'] = None
        model = MODELS.build(backbone)
        want = validate_pruning_ratios(PUBLISHED_RATIOS[backbone['pruning_ratios']], SWIN_T_DEPTHS)
        assert model.get_pruning_ratios() == [list(s) for s in want], path


def test_searched_ratios_replace_the_templates_name(tmp_path):
    """The fine-tune config a search writes inherits a template that names 'cfg2'; the found lists
    override the name, and the model built from it runs the found ratios."""
    from mmsparse.engine.loops.search_report import finetune_config_text
    from mmsparse.registry import MODELS
    template = osp.join(CONFIG_DIR, 'sparsevit', 'swin_t_in1k_finetune_toy.py')
    assert Config.fromfile(template).model.backbone.pruning_ratios == 'cfg2'
    found = [[0.1, 0.1], [0.0, 0.0], [0.3, 0.3, 0.3, 0.3, 0.7, 0.7], [0.2, 0.2]]
    path = tmp_path / 'finetune_found.py'
    path.write_text(finetune_config_text(template, ['backbone'], found, custom_hooks=[]))
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.pruning_ratios == found
    backbone = cfg.model.backbone.to_dict()
    backbone.pop('_scope_', None)
    assert MODELS.build(backbone).get_pruning_ratios() == found


def _defaults(fn):
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def _same(a, b):
    return _nested_floats(a) == _nested_floats(b)


@pytest.mark.parametrize('path', SAA, ids=ids(SAA))
def test_saa_hook_states_only_what_differs_from_its_defaults(path, merged):
    from mmsparse.engine.hooks.sparsity_aware_adaptation_hook import SparsityAwareAdaptationHook
    hooks = [h for h in merged[path].custom_hooks if h.type == HOOK]
    assert len(hooks) == 1
    defaults = _defaults(SparsityAwareAdaptationHook.__init__)
    restated = [k for k, v in hooks[0].items() if k != 'type' and k in defaults and _same(v, defaults[k])]
    assert not restated, f'{path}: {restated} are at their defaults'


@pytest.mark.parametrize('path', SEARCH, ids=ids(SEARCH))
def test_search_loop_states_only_what_differs_from_its_defaults(path, merged):
    from mmsparse.engine.loops.evolution_search_loop import EvolutionSearchLoop
    loop = merged[path].search_loop
    defaults = _defaults(EvolutionSearchLoop.__init__)
    population = loop.get('population', defaults['population'])
    # None means half the population mutates and the rest crosses over
    defaults['num_mutation'] = population // 2
    defaults['num_crossover'] = population - defaults['num_mutation']
    restated = [k for k, v in loop.items() if k in defaults and _same(v, defaults[k])]
    assert not restated, f'{path}: {restated} are at their defaults'


@pytest.mark.parametrize('path', SEARCH, ids=ids(SEARCH))
def test_every_search_config_runs_through_tools_search(path, merged, search_tool):
    """One entry point: the config holds ``search_loop`` only, and tools/search.py makes it the run's
    train loop, scored on the config's own val dataloader and evaluator from the given checkpoint."""
    cfg = copy.deepcopy(merged[path])
    assert 'search_loop' in cfg
    assert 'EvolutionSearchLoop' not in str(cfg.train_cfg.get('type')), 'train_cfg copies search_loop'
    loop_cfg = cfg.search_loop.to_dict()
    args = types.SimpleNamespace(
        config=path,
        checkpoint='saa.pth',
        constraint=None,
        budget=None,
        budget_min=None,
        direct_latency=False,
        resume=False)
    run = search_tool.search_cfg(cfg, args)
    assert run.load_from == 'saa.pth' and run.param_scheduler is None
    assert run.train_cfg.type == 'mmsparse.EvolutionSearchLoop'
    assert run.train_cfg.dataloader == run.val_dataloader and run.train_cfg.evaluator == run.val_evaluator
    for key, value in loop_cfg.items():
        assert run.train_cfg[key] == value, key
    assert osp.isfile(run.train_cfg.base_config)


def test_sparse_swin_t_is_written_once():
    """Only the base file spells out Swin-T's heads; the configs that replace a non-Swin backbone
    inherit the base."""
    spelled = [p for p in ALL_CONFIGS if 'num_heads=[3, 6, 12, 24]' in open(p).read()]
    assert spelled == [osp.join(CONFIG_DIR, '_base_', 'models', 'sparse_swin_t.py')]
    for name in ('swin_t_in1k.py', 'pgd_swin_t_kitti_mono3d.py'):
        bases = ast.literal_eval(
            next(
                n.value for n in ast.parse(open(osp.join(CONFIG_DIR, 'sparsevit', name)).read()).body
                if isinstance(n, ast.Assign) and n.targets[0].id == '_base_'))
        assert '../_base_/models/sparse_swin_t.py' in bases, name


# task root config -> (drop_path_rate, out_indices) of its recipe
TASK_BACKBONES = {
    'maskrcnn_swin_t.py': (0.2, (0, 1, 2, 3)),
    'swin_t_in1k.py': (0.2, (3, )),
    'upernet_swin_t_ade20k.py': (0.3, (0, 1, 2, 3)),
    'pgd_swin_t_kitti_mono3d.py': (0.2, (0, 1, 2, 3)),
}


@pytest.mark.parametrize('name', sorted(TASK_BACKBONES))
def test_every_task_backbone_is_mmdets_swin_t(name, merged):
    """Each task's SparseSwin has the parameters of mmdet's Swin-T (its constructor defaults) and the
    recipe's drop-path rate and output stages."""
    from mmdet.models.backbones import SwinTransformer

    from mmsparse.registry import MODELS
    backbone = merged[osp.join(CONFIG_DIR, 'sparsevit', name)].model.backbone.to_dict()
    backbone.pop('_scope_', None)
    backbone['init_cfg'] = None
    sparse = MODELS.build(backbone)
    drop_path, out_indices = TASK_BACKBONES[name]
    reference = SwinTransformer(out_indices=out_indices)  # one output norm per output stage
    got = {k: v.shape for k, v in sparse.state_dict().items() if k != 'pruning_ratios'}
    assert got == {k: v.shape for k, v in reference.state_dict().items()}
    last_block = sparse.stages[-1].blocks[-1]
    assert last_block.ffn.dropout_layer.drop_prob == pytest.approx(drop_path)
    assert tuple(sparse.out_indices) == out_indices
    assert sparse.get_pruning_ratios() == [[0.0] * d for d in SWIN_T_DEPTHS]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert [tuple(o.shape[1:]) for o in sparse.eval()(x)] == [(96 * 2**i, 16 // 2**i, 16 // 2**i)
                                                                  for i in out_indices]


def test_configs_point_only_at_the_repository_and_the_papers():
    bad = []
    for path in ALL_CONFIGS:
        for i, line in enumerate(open(path), 1):
            low = line.lower()
            if 'spec ' in low or '§' in line or 'pitfall' in low or ' issue ' in low:
                bad.append(f'{osp.relpath(path, CONFIG_DIR)}:{i}: {line.strip()}')
    assert not bad, '\n'.join(bad)


def test_prune_grow_hook_settings_are_written_once():
    """The SViTE configs take the paper's prune-and-grow schedule from one base file and add their
    Delta T."""
    base = osp.join(CONFIG_DIR, '_base_', 'schedules', 'svite_prune_grow.py')
    spelled = [p for p in ALL_CONFIGS if "'mmsparse.PruneGrowHook'" in open(p).read()]
    assert spelled == [base]
    import mmsparse  # noqa: F401  (custom_imports)
    delta_t = {'tiny': 20000, 'small': 15000, 'base': 7000}
    for path in glob.glob(osp.join(CONFIG_DIR, 'svite', '*_in1k.py')):
        name = osp.basename(path)
        hook = [h for h in Config.fromfile(path).custom_hooks if h['type'] == 'mmsparse.PruneGrowHook']
        assert len(hook) == 1, name
        expected = dict(
            Config.fromfile(base)['s2vite_prune_grow' if name.startswith('s2vite') else 'svite_prune_grow'])
        expected['delta_t'] = delta_t[name.split('_')[1].split('-')[1]]
        assert hook[0] == expected, name

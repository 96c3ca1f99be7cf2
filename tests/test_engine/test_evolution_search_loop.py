"""EvolutionSearchLoop inside a real mmengine Runner, with a toy model whose metric depends on ratios."""
import copy
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from mmengine.runner import Runner
from torch import nn

from mmsparse.sparsity.cost import swin_macs
from mmsparse.sparsity.evolution import InfeasibleBudgetError
from mmsparse.sparsity.latency import LatencyLUT
from mmsparse.sparsity.search_space import DEFAULT_CHOICES
from tests.tiny_models import PATCH2_SWIN

DEPTHS = (2, 2, 6, 2)
STAGE_WEIGHTS = (0.3, 1.0, 0.5, 0.8)  # score lost per unit ratio per block: stage 0 prunes cheaply
NUM_SAMPLES, SUBSET = 10, 6


@DATASETS.register_module(force=True)
class ToySearchDataset(BaseDataset):
    """Ten samples ``{'inputs': tensor(idx)}``; no files."""

    def __init__(self, **kwargs):
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        return [dict(idx=i) for i in range(NUM_SAMPLES)]

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        return dict(inputs=torch.tensor(float(info['idx'])))


@METRICS.register_module(force=True)
class ToySearchMetric(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        self.results.extend(float(s) for s in data_samples)

    def compute_metrics(self, results):
        return dict(score=sum(results) / len(results))


def toy_score(block_ratios, sample_idx):
    """What the toy model predicts for one sample with these ratios."""
    loss = sum(w * r for w, stage in zip(STAGE_WEIGHTS, block_ratios) for r in stage)
    return (1 + sample_idx / 100) * (10 - loss)


class ToyBackbone(nn.Module):

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.ratios = [[0.0] * d for d in DEPTHS]
        self.set_calls = 0
        self.macs_calls = []

    def set_pruning_ratios(self, ratios):
        assert [len(s) for s in ratios] == list(DEPTHS)
        self.ratios = ratios
        self.set_calls += 1

    def get_pruning_ratios(self):
        return copy.deepcopy(self.ratios)

    def macs(self, hw, ratios=None, batch=1, **overrides):
        """The toy costs what a Swin-T costs (SparseSwin.macs with Swin-T's architecture)."""
        self.macs_calls.append((tuple(hw), batch, overrides))
        return swin_macs(tuple(hw), self.ratios if ratios is None else ratios, batch=batch, **overrides)

    def forward(self, x):  # timed by constraint=dict(kind='latency', direct=True)
        return x.mean() + self.weight


@MODELS.register_module(force=True)
class ToyModel(BaseModel):
    """Predicts ``toy_score`` of its ratios per sample, plus ``backbone.weight`` (0 unless loaded)."""

    def __init__(self, fail_after=None, with_backbone=True):
        super().__init__()
        self.backbone = ToyBackbone() if with_backbone else nn.Linear(1, 1)
        self.fail_after = fail_after  # simulate a kill after this many predict batches
        self.batches = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return dict(loss=self.backbone.weight.sum())
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt('killed')
        self.batches += 1
        return [toy_score(self.backbone.ratios, float(x)) + float(self.backbone.weight) for x in inputs]


LOADER = dict(
    dataset=dict(type='ToySearchDataset'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    batch_size=4,
    num_workers=0)
BUDGET = 28.0  # G MACs at 672x672, batch 1: dense is 40.408 G


def write_base_config(tmp_path):
    path = tmp_path / 'toy_task.py'
    path.write_text("model = dict(type='ToyModel', backbone=dict(type='ToyBackbone'))\n"
                    "custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook', seed=0),\n"
                    "                dict(type='EMAHook', momentum=0.001)]\n")
    return str(path)


def toy_loop_config(tmp_path, **loop_kwargs):
    """The search loop config every toy search here runs, with ``loop_kwargs`` on top."""
    loop = dict(
        type='mmsparse.EvolutionSearchLoop',
        dataloader=LOADER,
        evaluator=dict(type='ToySearchMetric'),
        score_key='toy/score',
        population=8,
        parents=3,
        generations=3,
        constraint=dict(kind='macs', max=BUDGET),
        input_shape=(672, 672),
        val_subset=SUBSET,
        seed=0,
        base_config=write_base_config(tmp_path))
    loop.update(loop_kwargs)
    return loop


def make_runner(tmp_path, work, name, model=None, **loop_kwargs):
    loop = toy_loop_config(tmp_path, **{'finetune': dict(train_cfg=dict(max_epochs=36)), **loop_kwargs})
    return Runner(
        model=model or ToyModel(),
        work_dir=str(tmp_path / work),
        experiment_name=name,
        train_dataloader=LOADER,
        train_cfg=loop,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_scope='mmengine',
        log_level='WARNING')


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def expected_fitness(block_ratios):
    return sum(toy_score(block_ratios, i) for i in range(SUBSET)) / SUBSET


def test_search_outputs(tmp_path):
    runner = make_runner(tmp_path, 'a', 'search_outputs')
    runner.train()
    loop, work = runner.train_loop, str(tmp_path / 'a')
    history = read_jsonl(osp.join(work, 'search_history.jsonl'))
    assert history == loop.search.history and len(history) == loop.search.num_candidates
    # 3 populations of 8 feasible members; feasibility is the real MACs model against the budget
    assert sum(r['joined'] for r in history) == 24 and loop.search.generation == 3
    space = loop.space
    for r in history:
        macs = swin_macs((672, 672), space.to_block_ratios(r['genes'])) / 1e9
        assert r['constraints']['macs'] == pytest.approx(macs, abs=1e-9)
        assert r['feasible'] == (macs <= BUDGET)
        if r['feasible']:  # fitness = the toy metric over the first 6 val samples only
            assert r['fitness'] == pytest.approx(expected_fitness(space.to_block_ratios(r['genes'])))
    assert any(not r['feasible'] for r in history)
    # references: dense 40.408 G and uniform 0.5 20.699 G (docs/method/sparsevit.md, 4), scored on the subset
    best_json = json.load(open(osp.join(work, 'best_ratios.json')))
    refs = best_json['references']
    assert refs['dense']['constraints']['macs'] == pytest.approx(40.408, abs=1e-3)
    assert refs['uniform_0.5']['constraints']['macs'] == pytest.approx(20.699, abs=1e-3)
    assert refs['dense']['fitness'] == pytest.approx(expected_fitness([[0.0] * d for d in DEPTHS]))
    assert not refs['dense']['feasible'] and refs['uniform_0.5']['feasible']
    # best = the top feasible fitness; json holds genes and the per-block expansion
    top = max((r for r in history if r['feasible']), key=lambda r: r['fitness'])
    assert best_json['fitness'] == top['fitness'] and best_json['genes'] == top['genes']
    assert best_json['pruning_ratios'] == space.to_block_ratios(top['genes'])
    assert best_json['constraints']['macs'] <= BUDGET and best_json['score_key'] == 'toy/score'
    # the model is left with the best ratios
    assert runner.model.backbone.ratios == best_json['pruning_ratios']
    # pareto.png is a real PNG
    with open(osp.join(work, 'pareto.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # the fine-tune config inherits the task config, fixes the ratios and drops the SAA hook
    ft = Config.fromfile(osp.join(work, 'finetune_toy_task_macs28.py'))
    assert ft.model.type == 'ToyModel' and ft.model.backbone.type == 'ToyBackbone'
    assert ft.model.backbone.pruning_ratios == best_json['pruning_ratios']
    assert [h['type'] for h in ft.custom_hooks] == ['EMAHook']
    assert ft.train_cfg.max_epochs == 36
    # the state file is a complete snapshot, in JSON (a pickle would run code when loaded)
    with open(osp.join(work, 'search_state.json')) as f:
        state = json.load(f)
    assert state['version'] == 2 and state['search']['num_candidates'] == len(history)


@pytest.mark.parametrize('fail_after', [5, 23])
def test_kill_and_resume_equals_uninterrupted(tmp_path, fail_after):
    ref = make_runner(tmp_path, 'ref', f'ref{fail_after}')
    ref.train()
    ref_history = read_jsonl(str(tmp_path / 'ref' / 'search_history.jsonl'))
    killed_model = ToyModel(fail_after=fail_after)  # 2 batches per evaluation (6 samples, batch 4)
    with pytest.raises(KeyboardInterrupt):
        make_runner(tmp_path, 'b', f'killed{fail_after}', model=killed_model).train()
    partial = read_jsonl(str(tmp_path / 'b' / 'search_history.jsonl'))
    assert partial == ref_history[:len(partial)]
    resumed_model = ToyModel()
    make_runner(tmp_path, 'b', f'resumed{fail_after}', model=resumed_model, resume=True).train()
    assert read_jsonl(str(tmp_path / 'b' / 'search_history.jsonl')) == ref_history
    assert json.loads((tmp_path / 'b' / 'best_ratios.json').read_text()) == \
        json.loads((tmp_path / 'ref' / 'best_ratios.json').read_text())
    # nothing finished before the kill is evaluated again; only the interrupted evaluation is redone
    # (each evaluation, including the final best one, sets ratios once)
    assert killed_model.backbone.set_calls - 1 + resumed_model.backbone.set_calls \
        == ref.model.backbone.set_calls


def test_resume_refuses_an_old_pickle_state_and_leaves_it_untouched(tmp_path):
    work = tmp_path / 'old'
    work.mkdir()
    legacy = work / 'search_state.pkl'
    legacy.write_bytes(b'not read: loading a pickle could run code')
    runner = make_runner(tmp_path, 'old', 'legacy', resume=True)
    with pytest.raises(ValueError, match=r'search_state.pkl is a search state of an older mmsparse'):
        runner.train()
    assert legacy.read_bytes() == b'not read: loading a pickle could run code'


def test_resume_refuses_a_corrupt_json_state_naming_the_file(tmp_path):
    work = tmp_path / 'bad'
    work.mkdir()
    (work / 'search_state.json').write_text('{"version": 2, "search": ')
    runner = make_runner(tmp_path, 'bad', 'corrupt', resume=True)
    with pytest.raises(ValueError, match=r'search_state.json is not a valid search state'):
        runner.train()
    assert (work / 'search_state.json').read_text() == '{"version": 2, "search": '


def test_missing_score_key(tmp_path):
    runner = make_runner(tmp_path, 'c', 'missing_key', score_key='toy/nope')
    with pytest.raises(ValueError, match=r"score_key 'toy/nope' is not among .*'toy/score'"):
        runner.train()


def test_ratios_must_bind(tmp_path):
    runner = make_runner(tmp_path, 'd', 'unbound', model=ToyModel(with_backbone=False))
    with pytest.raises(ValueError, match='bind to nothing'):
        runner.train()  # mmengine builds the train loop here


def test_budget_error_and_injected_cost(tmp_path):
    calls = []

    def cost_fn(block_ratios):
        calls.append(block_ratios)
        return 100.0  # never fits

    runner = make_runner(
        tmp_path,
        'e',
        'infeasible',
        max_tries=5,
        report_references=False,
        constraint=dict(kind='macs', max=1.0, cost_fn=cost_fn))
    with pytest.raises(InfeasibleBudgetError, match=r'macs <= 1.0 G MACs .* in 5 consecutive tries'):
        runner.train()
    assert len(calls) == 5


def test_latency_constraint_from_lut(tmp_path):
    # a LUT at 672x672 (nW 576/144/36/9): block (s, b, k) costs k / nW_s ms on the window path and
    # 1 ms on the dense path, plus 2 ms fixed
    nws = [576, 144, 36, 9]
    table = {
        (s, b, math.floor(nws[s] * (1 - r) + 1e-6)): math.floor(nws[s] * (1 - r) + 1e-6) / nws[s]
        for s, d in enumerate(DEPTHS)
        for b in range(d)
        for r in DEFAULT_CHOICES
    }
    lut = LatencyLUT(
        nws,
        DEPTHS,
        table,
        2.0,
        dict(device='toy-device', shape=(672, 672), batch=1),
        dense_ms={
            (s, b): 1.0
            for s, d in enumerate(DEPTHS)
            for b in range(d)
        })
    path = str(tmp_path / 'lut.json')
    lut.save(path)
    budget = 9.0  # dense is 2 + 12 = 14 ms
    runner = make_runner(
        tmp_path,
        'lat',
        'latency_lut',
        generations=1,
        constraint=dict(
            kind='latency', max=budget, lut=path, device_name='toy-device', validate=2, warmup=0, iters=2))
    runner.train()
    # the LUT was checked against direct timing of the (toy) backbone on 2 configurations
    errors = json.loads((tmp_path / 'lat' / 'best_ratios.json').read_text())['lut_relative_errors']
    assert len(errors) == 2 and all(math.isfinite(e) for e in errors)
    history = runner.train_loop.search.history
    for r in history + list(runner.train_loop.references.values()):
        ratios = runner.train_loop.space.to_block_ratios(r['genes'])
        assert r['constraints'] == {'latency': pytest.approx(lut.estimate(ratios))}
        assert r['feasible'] == (lut.estimate(ratios) <= budget)
    assert runner.train_loop.references['dense']['constraints']['latency'] == pytest.approx(14.0)
    assert any(not r['feasible'] for r in history)
    # no LUT for this device and building disabled: a clear error, not a silent fallback
    runner = make_runner(
        tmp_path,
        'lat2',
        'latency_nolut',
        constraint=dict(kind='latency', max=budget, lut=path, device_name='other-device', build_lut=False))
    with pytest.raises(FileNotFoundError, match='no latency LUT for other-device'):
        runner.train()


def test_latency_lut_is_measured_when_missing(tmp_path, one_torch_thread):
    model = SwinFidelityModel()
    runner = make_runner(
        tmp_path,
        'calib',
        'latency_calibrate',
        model=model,
        generations=1,
        population=4,
        parents=2,
        report_references=False,
        input_shape=(56, 56),
        constraint=dict(
            kind='latency', max=1e9, device_name='this-cpu', warmup=0, iters=1, lut_rounds=1, validate=2))
    runner.train()
    lut = LatencyLUT.load(str(tmp_path / 'calib' / 'latency_lut.json'), 'this-cpu', (56, 56), 1)
    # nW 16/4/1/1 with min_keep=1: stage 0 has 9 distinct k, stage 1 has 4 (4, 3, 2, 1)
    assert sorted({k for s, b, k in lut.table if s == 0}) == [3, 4, 6, 8, 9, 11, 12, 14, 16]
    assert sorted({k for s, b, k in lut.table if s == 1}) == [1, 2, 3, 4]
    # measured block by block: every block on both paths, each stage's entry, all real times
    assert len(lut.dense_ms) == 8 and sorted(lut.entry_ms) == [0, 1, 2, 3]
    assert all(v > 0 for part in (lut.table, lut.dense_ms, lut.entry_ms) for v in part.values())
    for r in runner.train_loop.search.history:
        ratios = runner.train_loop.space.to_block_ratios(r['genes'])
        assert r['constraints']['latency'] == pytest.approx(lut.estimate(ratios))
    assert len(runner.train_loop.lut_errors) == 2


def test_direct_latency(tmp_path):
    runner = make_runner(
        tmp_path,
        'direct',
        'latency_direct',
        generations=1,
        population=4,
        parents=2,
        report_references=False,
        constraint=dict(kind='latency', max=1e9, direct=True, warmup=1, iters=3))
    runner.train()
    history = runner.train_loop.search.history
    assert len(history) == 4 and all(r['feasible'] for r in history)
    assert all(0 < r['constraints']['latency'] < 1e4 for r in history)


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _search_worker(rank, port, tmp_dir):
    """One of 2 gloo ranks: the same search as ``make_runner``, the val subset sharded by rank."""
    import os
    from pathlib import Path

    import torch.distributed as dist
    os.environ.update(
        MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    torch.set_num_threads(1)  # two processes on a shared CPU
    dist.init_process_group('gloo', rank=rank, world_size=2)
    tmp = Path(tmp_dir)
    loop = toy_loop_config(tmp)
    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp / 'dist'),
        experiment_name='dist',
        train_dataloader=LOADER,
        train_cfg=loop,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_scope='mmengine',
        log_level='WARNING',
        launcher='pytorch',
        cfg=dict(
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')))
    runner.train()
    search = runner.train_loop.search
    (tmp / f'rank{rank}.json').write_text(
        json.dumps(
            dict(
                history=search.history,
                batches=runner.model.module.batches,
                references=runner.train_loop.references)))
    dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path):
    """Rank 0 samples and broadcasts, each rank scores half of the val subset, the evaluator gathers:
    both ranks follow exactly the 1-process trajectory."""
    import torch.multiprocessing as mp
    single = make_runner(tmp_path, 'single', 'single_process')
    single.train()
    # fork: re-importing the OpenMMLab stack in spawned workers costs ~20 s; the toy model's work
    # is plain Python, so nothing in the workers depends on the parent's thread pools
    mp.start_processes(
        _search_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True, start_method='fork')
    ranks = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    assert ranks[0]['history'] == ranks[1]['history'] == single.train_loop.search.history
    assert ranks[0]['references'] == single.train_loop.references
    # the 6-sample subset was split: each rank ran 1 batch of 3 per evaluation instead of 2 batches
    evaluations = single.model.batches // 2
    assert ranks[0]['batches'] == ranks[1]['batches'] == evaluations
    assert json.loads((tmp_path / 'dist' / 'best_ratios.json').read_text())['genes'] == \
        single.train_loop.search.best['genes']


class SwinFidelityModel(BaseModel):
    """A real (tiny) SparseSwin; the score of a sample is minus the distance of its pruned features
    from its dense features, so the search trades fidelity against MACs on real window pruning."""

    def __init__(self):
        super().__init__()
        from mmsparse.models.backbones.sparse_swin import SparseSwin
        torch.manual_seed(0)
        # 56x56 inputs: 16/4/1/1 windows per stage, a search space that stays cheap on a CPU
        self.backbone = SparseSwin(**PATCH2_SWIN, out_indices=(3, ), min_keep=1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        images = torch.stack(
            [torch.randn(3, 56, 56, generator=torch.Generator().manual_seed(int(x))) for x in inputs])
        pruned = self.backbone(images)[-1]
        with self.backbone.temporary_pruning_ratios(None):
            dense = self.backbone(images)[-1]
        return [-float((p - d).norm()) for p, d in zip(pruned, dense)]


def test_search_on_sparse_swin(tmp_path, one_torch_thread):
    model = SwinFidelityModel()
    # the architecture as SwinFidelityModel builds it, written out: the backbone's macs() must use it
    kwargs = dict(
        depths=(2, 2, 2, 2),
        embed_dims=16,
        patch_size=2,
        in_channels=3,
        window_size=7,
        mlp_ratio=2,
        out_indices=(3, ),
        keep_rounding='exact',
        min_keep=1)
    assert model.backbone.macs_arguments() == kwargs
    # nW 16/4/1/1: stages 2-3 cannot prune with min_keep=1
    dense_macs = swin_macs((56, 56), None, **kwargs) / 1e9
    budget = 0.85 * dense_macs
    runner = make_runner(
        tmp_path,
        'swin',
        'sparse_swin',
        model=model,
        generations=2,
        input_shape=(56, 56),
        constraint=dict(kind='macs', max=budget),
        population=6,
        parents=2)
    runner.train()
    loop = runner.train_loop
    refs = loop.references
    assert refs['dense']['fitness'] == 0.0 and refs['dense']['constraints']['macs'] == pytest.approx(
        dense_macs)
    for r in loop.search.history:
        macs = swin_macs((56, 56), loop.space.to_block_ratios(r['genes']), **kwargs) / 1e9
        assert r['constraints']['macs'] == pytest.approx(macs) and r['feasible'] == (macs <= budget)
    best = loop.search.best
    assert best['constraints']['macs'] <= budget and best['fitness'] < 0
    # the search beats uniform 0.5 (feasible here) in fidelity at no more MACs than the budget
    assert refs['uniform_0.5']['feasible'] and best['fitness'] >= refs['uniform_0.5']['fitness']
    assert model.backbone.get_pruning_ratios() == loop.space.to_block_ratios(best['genes'])


@pytest.mark.parametrize(
    'constraint, message',
    [
        (dict(kind='flops', max=1.0), r"constraint.kind must be one of \('macs', 'latency'\), got 'flops'"),
        (dict(kind='macs', min=2.0,
              max=1.0), r'constraint.min \(2.0\) must not exceed constraint.max \(1.0\)'),
        (dict(kind='latency', max=9.0, lut_rounds=0), r'constraint.lut_rounds must be >= 1 .* got 0'),
        (dict(kind='latency', max=9.0,
              lut_fit=3), r'constraint.lut_fit must be 0 \(no fit\) or >= 4 .* got 3'),
        (dict(kind='latency', max=9.0, lut_fit=-1), r'constraint.lut_fit must be 0 .* got -1'),
        (dict(kind='macs', max=1.0, batch=0), r'constraint.batch must be >= 1, got 0'),
        # a misspelled key used to be accepted and ignored
        (dict(kind='latency', max=9.0, lut_round=3),
         r"constraint: unknown key\(s\) \['lut_round'\]; allowed keys: \['batch', .*'lut_rounds'"),
    ])
def test_bad_constraint_is_refused_naming_the_field(constraint, message):
    from mmsparse.engine.loops.search_constraints import SearchConstraint
    with pytest.raises(ValueError, match=message):
        SearchConstraint(constraint)


def test_constraint_owns_its_window_description_and_fingerprint():
    from mmsparse.engine.loops.search_constraints import SearchConstraint
    c = SearchConstraint(dict(kind='latency', min=2.0, max=9.0, lut_fit=0, lut_rounds=1, validate=4))
    assert (c.kind, c.batch, c.lut_fit, c.lut_rounds, c.direct) == ('latency', 1, 0, 1, False)
    assert [c.feasible(v) for v in (1.9, 2.0, 9.0, 9.1)] == [False, True, True, False]
    assert c.describe((672, 672)) == '2.0 <= latency <= 9.0 ms (batch 1, 672x672)'
    # how the table is measured or rated does not change what a candidate costs
    same = SearchConstraint(dict(kind='latency', min=2.0, max=9.0, lut_fit=16, validate=0))
    assert c.fingerprint() == same.fingerprint()
    assert c.fingerprint() != SearchConstraint(dict(kind='latency', min=2.0, max=9.0, batch=4)).fingerprint()
    assert SearchConstraint(c).to_dict() == c.to_dict()


class SeededSwinFidelityModel(SwinFidelityModel):

    def init_weights(self):
        pass  # keep the seeded weights: two runners (two random seeds) must score the same model


def test_compiled_search_scores_like_the_eager_one(tmp_path, one_torch_thread):
    # aot_eager: dynamo's graphs (one per ratio set) without inductor's C++ build
    from torch._dynamo.utils import counters

    # one batch of the whole subset: one image shape, so one graph per ratio set
    kw = dict(
        generations=1,
        input_shape=(56, 56),
        population=2,
        parents=2,
        report_references=False,
        dataloader=dict(LOADER, batch_size=SUBSET))
    budget = 0.9 * swin_macs((56, 56),
                             None,
                             depths=(2, 2, 2, 2),
                             embed_dims=16,
                             patch_size=2,
                             mlp_ratio=2,
                             out_indices=(3, ),
                             min_keep=1) / 1e9
    eager = make_runner(
        tmp_path,
        'eager',
        'eager',
        model=SeededSwinFidelityModel(),
        constraint=dict(kind='macs', max=budget),
        **kw)
    eager.train()
    graphs = counters['stats']['unique_graphs']
    compiled = make_runner(
        tmp_path,
        'compiled',
        'compiled',
        model=SeededSwinFidelityModel(),
        constraint=dict(kind='macs', max=budget),
        compile=dict(backend='aot_eager'),
        **kw)
    compiled.train()
    a, b = eager.train_loop.search.history, compiled.train_loop.search.history
    assert [r['genes'] for r in a] == [r['genes'] for r in b]
    scored = [(x['fitness'], y['fitness']) for x, y in zip(a, b) if x['fitness'] is not None]
    assert scored and all(y == pytest.approx(x, rel=1e-4, abs=1e-4) for x, y in scored)
    # every scored candidate compiled its ratio set and the dense reference anew (cache dropped)
    assert counters['stats']['unique_graphs'] - graphs == 2 * len(scored)


def test_compile_option_is_checked_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"compile: unknown key\(s\) \['fullgraf'\]"):
        make_runner(tmp_path, 'bad', 'bad', compile=dict(fullgraf=True)).train()


def test_macs_constraint_is_the_backbones_own_macs(tmp_path):
    model = ToyModel()
    runner = make_runner(
        tmp_path,
        'own',
        'own_macs',
        model=model,
        generations=1,
        report_references=False,
        constraint=dict(kind='macs', max=2 * BUDGET, batch=2, cost_kwargs=dict(convention='paper')))
    runner.train()
    # asked at the loop's input shape and batch, with the overrides of cost_kwargs
    assert model.backbone.macs_calls and all(c == ((672, 672), 2, dict(convention='paper'))
                                             for c in model.backbone.macs_calls)
    for r in runner.train_loop.search.history:
        ratios = runner.train_loop.space.to_block_ratios(r['genes'])
        assert r['constraints']['macs'] == swin_macs((672, 672), ratios, batch=2, convention='paper') / 1e9


class NoCostBackbone(ToyBackbone):
    macs = None  # ratios can be set, but it cannot tell its MACs


def test_macs_constraint_without_backbone_macs_or_cost_fn_is_an_error(tmp_path):
    model = ToyModel()
    model.backbone = NoCostBackbone()
    runner = make_runner(tmp_path, 'nomacs', 'no_macs', model=model)
    with pytest.raises(
            ValueError,
            match=r"constraint.kind='macs' needs a backbone with macs\(hw, ratios, batch\) .* "
            r'or an injected constraint.cost_fn .*backbone \(NoCostBackbone\) has no macs\(\)'):
        runner.train()
    # an injected cost function needs nothing from the backbone
    model = ToyModel()
    model.backbone = NoCostBackbone()
    runner = make_runner(
        tmp_path,
        'nomacs2',
        'no_macs_cost_fn',
        model=model,
        generations=1,
        report_references=False,
        constraint=dict(kind='macs', max=2.0, cost_fn=lambda block_ratios: 1.0))
    runner.train()
    assert all(r['constraints'] == {'macs': 1.0} for r in runner.train_loop.search.history)


def test_latency_table_without_a_block_timer_is_an_error(tmp_path):
    runner = make_runner(tmp_path, 'notimer', 'no_timer', constraint=dict(kind='latency', max=9.0))
    with pytest.raises(ValueError, match=r'block_timer\(\) .* ToyBackbone has none: give constraint.lut'):
        runner.train()


class CoarseToyModel(ToyModel):
    """Scores rounded to whole numbers: many candidates tie, at different MACs."""

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return [float(round(s)) for s in super().forward(inputs, data_samples, mode)]


def test_tied_scores_choose_the_cheaper_candidate(tmp_path):
    runner = make_runner(tmp_path, 'ties', 'ties', model=CoarseToyModel(), val_subset=1)
    runner.train()
    history = [r for r in runner.train_loop.search.history if r['feasible']]
    best = json.loads((tmp_path / 'ties' / 'best_ratios.json').read_text())
    top = [r for r in history if r['fitness'] == best['fitness']]
    assert best['fitness'] == max(r['fitness'] for r in history)
    assert len({r['constraints']['macs'] for r in top}) > 1  # a tie at different costs
    # the chosen point is never dominated: nothing scores as well for fewer MACs
    assert best['constraints']['macs'] == min(r['constraints']['macs'] for r in top)

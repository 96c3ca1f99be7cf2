"""SparsityAwareAdaptationHook: per-iteration sampling in a real Runner (docs/method/sparsevit.md, 3.1)."""
import json
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.runner import Runner

from mmsparse.sparsity.cost import swin_macs
from mmsparse.sparsity.ratios import PUBLISHED_RATIOS
from mmsparse.sparsity.search_space import SwinRatioSpace
from tests.test_engine.saa_toy import SWIN_KW, SwinToyClassifier, SwinToyData
from tests.tool_runner import REPO_ROOT, data_root_options, run_tool

SEED = 7
SPACE = SwinRatioSpace()  # Swin-T, grid 0 .. 0.8


class CountMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results += [int(s['pred'] == s['gt']) for s in data_samples]

    def compute_metrics(self, results):
        return dict(acc=sum(results) / len(results))


def make_runner(work_dir,
                max_iters=4,
                resume=False,
                load_from=None,
                val_ratios=None,
                val_interval=2,
                accumulate=1,
                **hook_kwargs):
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(SwinToyData(), batch_size=4)
    hook = dict(type='mmsparse.SparsityAwareAdaptationHook', seed=SEED, val_ratios=val_ratios, debug=True)
    hook.update(hook_kwargs)
    return Runner(
        model=SwinToyClassifier(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=torch.utils.data.DataLoader(SwinToyData(n=4), batch_size=4),
        val_evaluator=Evaluator([CountMetric()]),
        val_cfg=dict(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=val_interval),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3), accumulative_counts=accumulate),
        custom_hooks=[hook],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2)),
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from,
        log_processor=dict(by_epoch=False),
        experiment_name=osp.basename(str(work_dir)))


def read(work_dir, rank=0):
    with open(osp.join(str(work_dir), f'saa_ratios_rank{rank}.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def saa_run(tmp_path_factory):
    work = tmp_path_factory.mktemp('saa')
    runner = make_runner(work)
    runner.train()
    return runner, work


def test_training_samples_follow_the_search_space_and_the_seed(saa_run):
    runner, work = saa_run
    train_seen = [r for training, r in runner.model.seen if training]
    assert len(train_seen) == 4
    for it, ratios in enumerate(train_seen):
        assert ratios == SPACE.to_block_ratios(SPACE.sample_at(SEED, it))  # (seed, iter) only
        for stage in ratios:
            assert stage[0::2] == stage[1::2]  # a pair shares one gene
            assert stage == sorted(stage)  # non-decreasing inside a stage
            assert all(round(r * 10) == r * 10 and 0 <= r <= 0.8 for r in stage)
    assert len({json.dumps(r) for r in train_seen}) > 1  # it does change every iteration


def test_validation_uses_dense_ratios_and_never_samples(saa_run):
    runner, _ = saa_run
    val_seen = [r for training, r in runner.model.seen if not training]
    assert len(val_seen) == 2  # val_interval 2 over 4 iterations, one batch each
    assert all(r == [[0.0] * 2, [0.0] * 2, [0.0] * 6, [0.0] * 2] for r in val_seen)


def test_given_val_ratios_are_used_at_val_and_test(saa_run, tmp_path):
    fixed = [[0.5, 0.5], [0.0, 0.0], [0.2, 0.2, 0.3, 0.3, 0.3, 0.3], [0.0, 0.0]]
    runner = make_runner(tmp_path, max_iters=2, val_interval=2, val_ratios=fixed)
    runner.train()
    assert [r for training, r in runner.model.seen if not training] == [fixed]
    hook = next(h for h in runner.hooks if type(h).__name__ == 'SparsityAwareAdaptationHook')
    hook.before_train_iter(runner, 0)
    assert runner.model.backbone.get_pruning_ratios() != fixed
    runner.call_hook('before_test_epoch')
    assert runner.model.backbone.get_pruning_ratios() == fixed
    # val_ratios may also be given as genes of the search space
    from mmsparse.engine.hooks import SparsityAwareAdaptationHook
    genes = dict(s0=0.4, s1=0.4, s2_1=0.5, s2_2=0.6, s2_3=0.7, s3=0.8)
    trained, _ = saa_run
    SparsityAwareAdaptationHook(val_ratios=genes).before_val_epoch(trained)
    assert trained.model.backbone.get_pruning_ratios() == SPACE.to_block_ratios(genes)
    # ... or as a named set, which must not be read as a sequence of characters
    SparsityAwareAdaptationHook(val_ratios='cfg2').before_val_epoch(trained)
    assert trained.model.backbone.get_pruning_ratios() == [list(s) for s in PUBLISHED_RATIOS['cfg2']]
    with pytest.raises(ValueError, match='val_ratios'):
        SparsityAwareAdaptationHook(val_ratios=[[0.5, 0.5], [0.0]]).before_val_epoch(trained)


def test_logged_macs_equal_the_cost_model(saa_run):
    runner, work = saa_run
    records = read(work)
    assert [r['iter'] for r in records] == list(range(4))
    for r in records:
        expected = swin_macs((56, 64),
                             r['ratios'],
                             embed_dims=16,
                             depths=(2, 2, 6, 2),
                             window_size=7,
                             patch_size=4,
                             mlp_ratio=4,
                             out_indices=(3, ),
                             min_keep=1)
        assert r['macs'] == expected
    assert runner.message_hub.get_scalar('train/saa_gmacs').current() == records[-1]['macs'] / 1e9
    dense = swin_macs((56, 64), None, embed_dims=16, out_indices=(3, ), min_keep=1)
    assert all(r['macs'] <= dense for r in records) and any(r['macs'] < dense for r in records)


def test_resume_reproduces_the_sequence(saa_run, tmp_path):
    _, work = saa_run
    runner = make_runner(tmp_path, resume=True, load_from=str(work / 'iter_2.pth'))
    runner.train()
    assert read(tmp_path) == read(work)[2:]


def test_accumulated_micro_batches_share_one_configuration(tmp_path):
    runner = make_runner(tmp_path, max_iters=4, accumulate=2, val_interval=100)
    runner.train()
    seen = [r for training, r in runner.model.seen if training]
    expected = [SPACE.to_block_ratios(SPACE.sample_at(SEED, step)) for step in (0, 0, 1, 1)]
    assert seen == expected


def test_model_without_window_pruning_is_an_error(tmp_path):
    from tests.test_engine.svite_toy import ToyNet, toy_loader
    runner = Runner(
        model=ToyNet(),
        work_dir=str(tmp_path),
        train_dataloader=toy_loader(),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='mmsparse.SparsityAwareAdaptationHook')])
    with pytest.raises(ValueError, match='set_pruning_ratios'):
        runner.train()


def test_bad_sampler_name_is_a_value_error():
    from mmsparse.engine.hooks import SparsityAwareAdaptationHook
    with pytest.raises(ValueError, match='sample'):
        SparsityAwareAdaptationHook(sample='uniform_iid')


def test_two_gloo_ranks_set_identical_ratios(toy_imagenet, tmp_path):
    """tools/dist_train.sh with 2 CPU processes: both ranks log the same configuration per iteration."""
    config = tmp_path / 'saa_toy.py'
    config.write_text(
        f"_base_ = '{osp.join(REPO_ROOT, 'configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py')}'\n"
        "custom_imports = dict(imports=['mmsparse', 'tests.test_engine.saa_toy'])\n"
        f"model = dict(backbone=dict(_delete_=True, type='mmsparse.SparseSwin', **{SWIN_KW!r}),\n"
        "             neck=dict(_delete_=True, type='mmsparse.LastMapGAP'),\n"
        "             head=dict(in_channels=128))\n"
        f"custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook', seed={SEED}, debug=True)]\n")
    work = tmp_path / 'work'
    run_tool([
        'dist_train.sh',
        str(config), '2', '--work-dir',
        str(work), '--cfg-options', *data_root_options(toy_imagenet), 'train_dataloader.batch_size=4',
        'train_cfg.max_iters=3', 'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=100'
    ],
             env=dict(PORT='29561'))
    rank0, rank1 = read(work, 0), read(work, 1)
    assert [r['iter'] for r in rank0] == [0, 1, 2]
    assert rank0 == rank1
    for r in rank0:
        assert r['ratios'] == SPACE.to_block_ratios(SPACE.sample_at(SEED, r['iter']))


class RatiosWithoutMacs(torch.nn.Module):
    """Takes ratios but cannot tell its MACs."""

    def __init__(self):
        super().__init__()
        self.ratios = SPACE.to_block_ratios(SPACE.uniform(0.0))

    def set_pruning_ratios(self, ratios):
        self.ratios = ratios

    def get_pruning_ratios(self):
        return self.ratios


def test_logging_macs_needs_a_backbone_with_macs():
    from types import SimpleNamespace

    from mmsparse.engine.hooks import SparsityAwareAdaptationHook
    runner = SimpleNamespace(model=torch.nn.Sequential(RatiosWithoutMacs()), seed=0)
    with pytest.raises(
            ValueError,
            match=r'log_macs=True needs a backbone with macs\(hw, ratios\) .*'
            r'RatiosWithoutMacs has none: set log_macs=False'):
        SparsityAwareAdaptationHook(seed=0).before_run(runner)
    hook = SparsityAwareAdaptationHook(seed=0, log_macs=False)
    hook.before_run(runner)
    hook.before_train_iter(SimpleNamespace(iter=3, optim_wrapper=None), 0)
    assert runner.model[0].ratios == SPACE.to_block_ratios(SPACE.sample_at(0, 3))

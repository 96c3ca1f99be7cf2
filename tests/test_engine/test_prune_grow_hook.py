"""PruneGrowHook inside a real mmengine Runner: schedule, logs, EMA, checkpoints, structured mode."""
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmsparse.sparsity.erk import layer_densities
from mmsparse.sparsity.prune_grow import prune_rate
from tests.test_engine.svite_toy import ToyNet, toy_loader
from tests.tool_runner import read_scalars, read_svite_updates


def make_runner(work_dir,
                model=None,
                max_iters=10,
                hooks=(),
                optim_type='mmsparse.SViTEOptimWrapper',
                loader=None,
                resume=False,
                load_from=None,
                ckpt_interval=5,
                accumulate=1,
                **hook_kwargs):
    hook = dict(type='mmsparse.PruneGrowHook', density=0.4, delta_t=2, t_end=0.8, seed=0, debug=True)
    hook.update(hook_kwargs)
    if model is None:
        torch.manual_seed(0)
        model = ToyNet()
    return Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=loader if loader is not None else toy_loader(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(
            type=optim_type,
            accumulative_counts=accumulate,
            optimizer=dict(type='AdamW', lr=0.02, weight_decay=0.05)),
        custom_hooks=[hook] + list(hooks),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=ckpt_interval)),
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from,
        log_processor=dict(by_epoch=False),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        experiment_name=osp.basename(str(work_dir)))


def svite_hook(runner):
    return next(h for h in runner.hooks if type(h).__name__ == 'PruneGrowHook')


class GradProbe(Hook):
    """Records, in after_train_iter, whether any parameter still has a gradient."""
    priority = 'VERY_LOW'

    def __init__(self):
        self.any_grad = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.any_grad.append(any(p.grad is not None for p in runner.model.parameters()))


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    work = tmp_path_factory.mktemp('svite_toy')
    runner = make_runner(work, hooks=[dict(type='EMAHook', momentum=0.5), GradProbe()])
    runner.train()
    return runner, str(work)


def test_gradients_exist_in_the_wrapper_and_are_gone_in_after_train_iter(toy_run):
    runner, _ = toy_run
    probe = next(h for h in runner.hooks if isinstance(h, GradProbe))
    assert probe.any_grad == [False] * 10  # mmengine zeroed them inside update_params
    assert svite_hook(runner).controller.update_grads_present == [True, True, True]


def test_schedule_updates_until_t_end_with_exact_per_layer_density(toy_run):
    runner, work = toy_run
    ctrl = svite_hook(runner).controller
    assert (ctrl.t_total, ctrl.t_end) == (10, 8)  # T_end = round(0.8 * 10)
    updates = read_svite_updates(work)
    assert [u['t'] for u in updates] == [2, 4, 6]  # Delta T = 2, none at t >= T_end
    shapes = {n: tuple(p.shape) for n, p in ctrl.masker.params.items()}
    target = layer_densities(shapes, 0.4, 'erk')
    for u in updates:
        assert u['rate'] == prune_rate(u['t'], 'cosine_reference', 0.5, 8, 10, 0.005)
        for name, layer in u['layers'].items():
            assert layer['active'] == round(target[name] * layer['numel'])
            assert layer['pruned'] == layer['grown']
            assert layer['swapped'] == math.ceil(u['rate'] * layer['active'])
    assert 'grown_survival' not in updates[0] and 0 <= updates[1]['grown_survival'] <= 1


def test_updates_are_logged_to_message_hub_and_visualizer(toy_run):
    runner, work = toy_run
    hub = runner.message_hub.log_scalars
    for key in ('rate', 'density', 'pruned', 'grown', 'swapped', 'itop', 'grown_survival'):
        assert f'train/svite/{key}' in hub, key
    last = read_svite_updates(work)[-1]
    assert hub['train/svite/pruned'].current() == last['pruned']
    records = read_scalars(work)
    assert [r['svite_t'] for r in records if 'svite_t' in r] == [2, 4, 6]


def test_ema_copy_and_checkpoint_carry_the_masks(toy_run):
    runner, work = toy_run
    ctrl = svite_hook(runner).controller
    ema = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook').ema_model.module
    ema_params = dict(ema.named_parameters())
    for name, mask in ctrl.masker.masks.items():
        assert bool((ema_params[name][~mask] == 0).all()), name
    ckpt = torch.load(osp.join(work, 'iter_10.pth'), map_location='cpu', weights_only=False)
    state = ckpt['svite']
    assert (state['t'], state['t_total'], state['num_updates']) == (10, 10, 3)
    for name, mask in ctrl.masker.masks.items():
        assert torch.equal(state['masker']['masks'][name], mask)
    assert torch.equal(state['generator'], ctrl.generator.get_state())


def test_resume_with_another_t_total_is_an_error(toy_run, tmp_path):
    _, work = toy_run
    runner = make_runner(tmp_path / 'r', max_iters=12, resume=True, load_from=osp.join(work, 'iter_5.pth'))
    with pytest.raises(ValueError, match='T_total=10 .* T_total=12'):
        runner.train()


def test_resume_in_process_equals_uninterrupted(tmp_path):
    make_runner(tmp_path / 'a', max_iters=10).train()
    make_runner(tmp_path / 'b', max_iters=10, ckpt_interval=3).train()  # writes iter_3.pth
    resumed = make_runner(
        tmp_path / 'c', max_iters=10, resume=True, load_from=str(tmp_path / 'b' / 'iter_3.pth'))
    resumed.train()
    a = torch.load(str(tmp_path / 'a' / 'iter_10.pth'), map_location='cpu', weights_only=False)
    c = torch.load(str(tmp_path / 'c' / 'iter_10.pth'), map_location='cpu', weights_only=False)
    for key, value in a['state_dict'].items():
        assert torch.equal(value, c['state_dict'][key]), key
    for name, mask in a['svite']['masker']['masks'].items():
        assert torch.equal(mask, c['svite']['masker']['masks'][name])
    assert [u['digest'] for u in read_svite_updates(str(tmp_path / 'a'))][1:] == \
        [u['digest'] for u in read_svite_updates(str(tmp_path / 'c'))]  # updates at t = 4, 6 after resume


def test_plain_optim_wrapper_is_a_config_error_naming_the_field(tmp_path):
    runner = make_runner(tmp_path, optim_type='OptimWrapper')
    with pytest.raises(ValueError, match=r"optim_wrapper\.type.*SViTEOptimWrapper.*'OptimWrapper'"):
        runner.train()


@pytest.mark.parametrize('kwargs,field', [(dict(density=0.0), 'density'), (dict(density=1.5), 'density'),
                                          (dict(delta_t=0), 'delta_t'), (dict(alpha=1.0), 'alpha'),
                                          (dict(t_end=1.5), 't_end'), (dict(decay='linear'), 'decay'),
                                          (dict(mode='blocks'), 'mode'), (dict(grow='momentum'), 'grow'),
                                          (dict(prune='taylor'), 'prune'),
                                          (dict(min_death_rate=0.6), 'min_death_rate'),
                                          (dict(distribution='normal'), 'distribution')])
def test_bad_hook_arguments_raise_one_value_error_naming_the_field(kwargs, field):
    from mmsparse.engine.hooks import PruneGrowHook
    with pytest.raises(ValueError, match=field):
        PruneGrowHook(**kwargs)


#: 2 blocks of 3 heads of 16 channels and 96 MLP neurons (``SparseDeiT`` arch)
THREE_HEAD_DEIT = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)


class TinyDeiTClassifier(BaseModel):
    """SparseDeiT (2 blocks, 3 heads of 16 dims, 96 MLP neurons) on 16x16 images + linear head."""

    def __init__(self, structured=None):
        super().__init__()
        from mmsparse.models.backbones import SparseDeiT
        self.backbone = SparseDeiT(arch=THREE_HEAD_DEIT, img_size=16, patch_size=4, structured=structured)
        self.head = nn.Linear(48, 4)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.head(self.backbone(inputs)[-1])
        return dict(loss=F.cross_entropy(logits, labels)) if mode == 'loss' else logits


class ImageData(torch.utils.data.Dataset):

    def __init__(self, n=32):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 3, 16, 16, generator=g)
        self.y = torch.randint(0, 4, (n, ), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def test_structured_mode_keeps_head_and_neuron_counts(tmp_path):
    torch.manual_seed(0)
    model = TinyDeiTClassifier(structured=dict(head_density=0.7, mlp_density=0.6, seed=0))
    loader = torch.utils.data.DataLoader(ImageData(), batch_size=8)
    init_neurons = [m.clone() for m in model.backbone.neuron_masks()]
    runner = make_runner(
        tmp_path,
        model=model,
        loader=loader,
        max_iters=7,
        mode='structured',
        delta_t=2,
        t_end=1.0,
        structured=dict(mlp_growth='random'))
    runner.train()
    updates = read_svite_updates(str(tmp_path))
    assert [u['t'] for u in updates] == [2, 4, 6]
    for u in updates:
        for name, layer in u['layers'].items():
            kept = 2 if name.endswith('heads') else 57  # floor(3 * 0.7), floor(96 * 0.6)
            assert layer['active'] == kept, name
            assert layer['pruned'] == layer['grown']
            # k = ceil(r * active) units re-decided per block and update
            assert layer['swapped'] == math.ceil(u['rate'] * kept)
    bb = model.backbone
    # mlp_growth='random' regrows among never-active neurons, so the neuron sets do move
    assert all(not torch.equal(a, b) for a, b in zip(init_neurons, bb.neuron_masks()))
    for layer, hm, nm in zip(bb.layers, bb.head_masks(), bb.neuron_masks()):
        rows = layer.attn.qkv.weight.view(3, 3, 16, 48)
        assert bool((rows[:, ~hm] == 0).all()) and bool((rows[:, hm] != 0).any())
        assert bool((layer.fc1.weight[~nm] == 0).all()) and bool((layer.fc2.weight[:, ~nm] == 0).all())


def test_structured_mode_needs_a_structured_backbone(tmp_path):
    runner = make_runner(
        tmp_path,
        model=TinyDeiTClassifier(),
        mode='structured',
        loader=torch.utils.data.DataLoader(ImageData(), batch_size=8))
    with pytest.raises(ValueError, match='model.backbone.structured'):
        runner.train()


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    runner = make_runner(tmp_path, max_iters=8, accumulate=2, delta_t=1, t_end=1.0)
    runner.train()
    ctrl = svite_hook(runner).controller
    assert (ctrl.t_total, ctrl.t_end, ctrl.t) == (4, 4, 4)  # 8 iterations = 4 optimizer steps
    updates = read_svite_updates(str(tmp_path))
    assert [(u['t'], u['iter']) for u in updates] == [(1, 2), (2, 4), (3, 6)]


def test_density_one_creates_no_masks_and_trains_like_no_hook(tmp_path):
    dense = make_runner(tmp_path / 'd', density=1.0)
    dense.train()
    assert svite_hook(dense).controller.masker.masks == {}
    assert not osp.exists(tmp_path / 'd' / 'svite_updates_rank0.jsonl')
    plain = make_runner(tmp_path / 'p', mode='none')
    plain.train()
    for a, b in zip(dense.model.parameters(), plain.model.parameters()):
        assert torch.equal(a, b)


def test_structured_optimizer_state_mask_zeroes_the_moments_of_inactive_units(tmp_path):
    torch.manual_seed(0)
    model = TinyDeiTClassifier(structured=dict(head_density=0.7, mlp_density=0.6, seed=0))
    runner = make_runner(
        tmp_path,
        model=model,
        max_iters=3,
        mode='structured',
        delta_t=2,
        optimizer_state='mask',
        loader=torch.utils.data.DataLoader(ImageData(), batch_size=8))
    runner.train()
    state = runner.optim_wrapper.optimizer.state
    for layer in model.backbone.layers:
        rows = ~layer.attn.head_mask.repeat_interleave(16).repeat(3)
        for key in ('exp_avg', 'exp_avg_sq'):
            assert bool((state[layer.attn.qkv.weight][key][rows] == 0).all())
            assert bool((state[layer.attn.qkv.bias][key][rows] == 0).all())
            assert bool((state[layer.fc1.weight][key][~layer.neuron_mask] == 0).all())
            assert bool((state[layer.fc2.weight][key][:, ~layer.neuron_mask] == 0).all())
            assert bool((state[layer.fc1.weight][key][layer.neuron_mask] != 0).any())


def test_token_selector_temperature_follows_the_linear_schedule_and_is_never_masked(tmp_path):
    torch.manual_seed(0)
    model = TinyDeiTClassifier()
    from mmsparse.models.backbones import SparseDeiT
    model.backbone = SparseDeiT(
        arch=THREE_HEAD_DEIT, img_size=16, patch_size=4, token_selector=dict(num_tokens=12))
    taus = []
    model.backbone.token_selector.register_forward_pre_hook(lambda m, a: taus.append(m.tau))
    runner = make_runner(
        tmp_path,
        model=model,
        max_iters=5,
        tau=(10.0, 0.1),
        loader=torch.utils.data.DataLoader(ImageData(), batch_size=8))
    runner.train()
    assert taus == [10.0 + (0.1 - 10.0) * t / 5 for t in range(5)]  # tau(t), t = steps done
    masks = svite_hook(runner).controller.masker.masks
    assert masks and not any('token_selector' in n for n in masks)


def test_a_test_only_runner_with_the_hook_does_not_need_an_optimizer(toy_run, tmp_path):
    """tools/test.py builds the runner from the training config, custom hooks included."""
    from mmengine.evaluator import BaseMetric, Evaluator

    class Acc(BaseMetric):

        def process(self, data_batch, data_samples):
            self.results += [int(s['pred'] == s['gt']) for s in data_samples]

        def compute_metrics(self, results):
            return dict(acc=sum(results) / len(results))

    _, work = toy_run
    torch.manual_seed(0)
    runner = Runner(
        model=ToyNet(),
        work_dir=str(tmp_path),
        test_dataloader=toy_loader(),
        test_cfg=dict(),
        test_evaluator=Evaluator([Acc()]),
        custom_hooks=[dict(type='mmsparse.PruneGrowHook', density=0.4)],
        load_from=osp.join(work, 'iter_10.pth'))
    metrics = runner.test()
    assert 0.0 <= metrics['acc'] <= 1.0
    masks = torch.load(osp.join(work, 'iter_10.pth'), weights_only=False)['svite']['masker']['masks']
    params = dict(runner.model.named_parameters())
    for name, mask in masks.items():  # the tested model is the sparse one
        assert bool((params[name][~mask] == 0).all())


class WeightProbe(Hook):
    """Snapshots the model's parameters before every iteration."""
    priority = 'VERY_HIGH'

    def __init__(self):
        self.before = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before.append([p.detach().clone() for p in runner.model.parameters()])


def test_structured_algorithm1_update_steps_move_weights_only_through_the_masks(tmp_path):
    torch.manual_seed(0)
    model = TinyDeiTClassifier(structured=dict(head_density=0.7, mlp_density=0.6, seed=0))
    probe = WeightProbe()
    runner = make_runner(
        tmp_path,
        model=model,
        max_iters=4,
        mode='structured',
        delta_t=2,
        t_end=1.0,
        algorithm1=True,
        hooks=[probe],
        loader=torch.utils.data.DataLoader(ImageData(), batch_size=8))
    runner.train()
    assert [u['t'] for u in read_svite_updates(str(tmp_path))] == [2]
    names = [n for n, _ in model.named_parameters()]
    before_2, before_3 = probe.before[1], probe.before[2]  # around the update step t = 2
    for name, a, b in zip(names, before_2, before_3):
        # no optimizer step at t = 2: a value either stayed or was zeroed by a new mask
        assert bool(((a == b) | (b == 0)).all()), name
    moved_at_1 = [not torch.equal(a, b) for a, b in zip(probe.before[0], probe.before[1])]
    assert all(moved_at_1[names.index(n)] for n in ('head.weight', 'backbone.ln1.weight'))

"""SViTE optimizer wrappers: masks exact after every step, prune-and-grow inside step()
(docs/method/svite.md, 1, "Where it runs")."""
import math

import pytest
import torch
from mmengine.optim import OptimWrapper

from mmsparse.engine.optimizers import AmpSViTEOptimWrapper, CPUAmpSViTEOptimWrapper, SViTEOptimWrapper
from mmsparse.sparsity.dynamic_sparsity import PruneGrowController
from mmsparse.sparsity.masks import ParameterMasker
from mmsparse.sparsity.prune_grow import prune_rate
from tests.test_engine.svite_toy import ToyNet, toy_batches

STEPS = 9
INTERVAL = 2
T_END = 7  # updates at t = 2, 4, 6 only


def build(optimizer='AdamW',
          wrapper_cls=SViTEOptimWrapper,
          optimizer_state='keep',
          algorithm1=False,
          decay='cosine_reference',
          **wrapper_kwargs):
    torch.manual_seed(0)
    model = ToyNet()
    masker = ParameterMasker(
        model, 0.4, include=[r'^backbone\.', r'^head\.'], optimizer_state=optimizer_state, seed=0)
    ctrl = PruneGrowController(
        masker,
        update_interval=INTERVAL,
        t_end=T_END,
        t_total=STEPS,
        death_rate=0.5,
        decay=decay,
        algorithm1=algorithm1,
        optimizer_state=optimizer_state)
    if optimizer == 'AdamW':
        opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
    wrapper = wrapper_cls(optimizer=opt, **wrapper_kwargs)
    wrapper.attach_sparsity(ctrl)
    return model, masker, ctrl, wrapper


def train_step(model, wrapper, x, y, loss_scale=1.0):
    with wrapper.optim_context(model):
        loss = model(x, y, mode='loss')['loss'] * loss_scale
    wrapper.update_params(loss)


def masked_are_zero(masker):
    return all(bool((p[~m] == 0).all()) for _, p, m in masker.items())


@pytest.mark.parametrize(
    'optimizer,wrapper_cls,optimizer_state',
    [
        ('AdamW', SViTEOptimWrapper, 'keep'),
        ('SGD', SViTEOptimWrapper, 'keep'),
        ('AdamW', SViTEOptimWrapper, 'mask'),
        ('SGD', SViTEOptimWrapper, 'mask'),
        ('AdamW', CPUAmpSViTEOptimWrapper, 'keep'),  # bf16 autocast: what --amp is on a CPU
    ])
def test_masked_weights_exactly_zero_after_every_step(optimizer, wrapper_cls, optimizer_state):
    model, masker, ctrl, wrapper = build(optimizer, wrapper_cls, optimizer_state)
    target = {n: int(round(masker.densities[n] * p.numel())) for n, p, _ in masker.items()}
    revived = 0
    for step, (x, y) in enumerate(toy_batches(STEPS), start=1):
        before = {n: m.clone() for n, _, m in masker.items()}
        train_step(model, wrapper, x, y)
        assert ctrl.t == step
        assert masked_are_zero(masker), step
        # the optimizer alone revives masked weights (moments / momentum carry gradient), so the
        # re-masking is what keeps them at zero
        state = wrapper.optimizer.state
        for n, p, m in masker.items():
            buf = state[p].get('exp_avg', state[p].get('momentum_buffer'))
            revived += int((buf[~m] != 0).sum())
            if optimizer_state == 'mask':
                for key in ('exp_avg', 'exp_avg_sq', 'momentum_buffer'):
                    if key in state[p]:
                        assert bool((state[p][key][~m] == 0).all()), (step, n, key)
        for n, _, m in masker.items():  # per-layer count never drifts (exact sampling)
            assert int(m.sum()) == target[n], (step, n)
        changed = any(not torch.equal(before[n], m) for n, _, m in masker.items())
        assert changed == (step in (2, 4, 6)), step  # no update after T_end = 7
    assert ctrl.num_updates == 3
    assert (revived > 0) == (optimizer_state == 'keep')


def test_every_update_swaps_ceil_rate_times_nnz_and_prunes_as_many_as_it_grows():
    model, masker, ctrl, wrapper = build('AdamW')
    updates = []
    for x, y in toy_batches(STEPS):
        old = {n: m.clone() for n, _, m in masker.items()}
        train_step(model, wrapper, x, y)
        stats = ctrl.pop_stats()
        if stats is None:
            continue
        updates.append(stats['t'])
        r = prune_rate(stats['t'], 'cosine_reference', 0.5, T_END, STEPS, 0.005)
        assert stats['rate'] == r
        for n, p, m in masker.items():
            layer = stats['layers'][n]
            nnz = int(old[n].sum())
            assert layer['swapped'] == math.ceil(r * nnz)
            pruned, grown = int((old[n] & ~m).sum()), int((m & ~old[n]).sum())
            assert pruned == grown == layer['pruned'] == layer['grown']
            assert layer['active'] == nnz == int(m.sum())
            assert bool((p[m & ~old[n]] == 0).all())  # grown weights start at exactly 0
        assert stats['pruned'] == stats['grown'] > 0
        if len(updates) > 1:
            assert 0.0 <= stats['grown_survival'] <= 1.0
    assert updates == [2, 4, 6]


def test_gradients_exist_inside_step_and_are_gone_after_update_params():
    model, masker, ctrl, wrapper = build('AdamW')
    for x, y in toy_batches(STEPS):
        train_step(model, wrapper, x, y)
        # mmengine's update_params zeroes (set_to_none) the gradients right after step(): this is
        # why a hook's after_train_iter cannot grow by gradient
        assert all(p.grad is None for p in model.parameters())
    assert ctrl.update_grads_present == [True, True, True]


def test_plain_optim_wrapper_has_no_gradient_left_for_a_hook():
    model = ToyNet()
    wrapper = OptimWrapper(optimizer=torch.optim.AdamW(model.parameters(), lr=0.01))
    x, y = toy_batches(1)[0]
    train_step(model, wrapper, x, y)
    assert all(p.grad is None for p in model.parameters())


def test_without_controller_the_wrapper_is_its_parent():
    x, y = toy_batches(1)[0]
    outs = []
    for cls in (OptimWrapper, SViTEOptimWrapper):
        torch.manual_seed(0)
        model = ToyNet()
        wrapper = cls(optimizer=torch.optim.AdamW(model.parameters(), lr=0.01))
        train_step(model, wrapper, x, y)
        outs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*outs))


def test_algorithm1_update_steps_change_weights_only_through_the_mask():
    model, masker, ctrl, wrapper = build('AdamW', algorithm1=True, decay='cosine_t_end')
    for step, (x, y) in enumerate(toy_batches(STEPS), start=1):
        w_old = {n: p.detach().clone() for n, p, _ in masker.items()}
        m_old = {n: m.clone() for n, _, m in masker.items()}
        others_old = [p.detach().clone() for n, p in model.named_parameters()]
        train_step(model, wrapper, x, y)
        if step in (2, 4, 6):
            stats = ctrl.pop_stats()
            assert stats['t'] == step
            assert stats['rate'] == 0.25 * (1 + math.cos(math.pi * step / T_END))
            for n, p, m in masker.items():
                kept = m & m_old[n]
                assert torch.equal(p[kept], w_old[n][kept])  # no optimizer step
                assert bool((p[~kept] == 0).all())  # pruned and grown are zero
            # unmasked parameters (biases) did not move either
            for old, p in zip(others_old, model.parameters()):
                if p.dim() == 1:
                    assert torch.equal(old, p)
        else:
            assert any(not torch.equal(w_old[n], p) for n, p, _ in masker.items())
    assert wrapper.optimizer.state[next(model.parameters())]['step'] == STEPS - 3


@pytest.fixture
def cpu_grad_scaler(monkeypatch):
    """mmengine's AmpOptimWrapper refuses CPUs; torch's GradScaler itself runs on CPU, so the
    loss-scaling path (unscale, inf check, skipped step, scale update) is testable here."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)

    def attach(wrapper, init_scale=2.**10):
        wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=init_scale, growth_interval=1000)
        return wrapper

    return attach


def test_amp_loss_scaling_masks_after_skipped_steps_and_defers_the_update(cpu_grad_scaler):
    model, masker, ctrl, wrapper = build('AdamW', AmpSViTEOptimWrapper)
    cpu_grad_scaler(wrapper)
    seen = []
    for step, (x, y) in enumerate(toy_batches(STEPS), start=1):
        w_before = [p.detach().clone() for p in model.parameters()]
        # step 2 (an update step) overflows: GradScaler skips it, the update must wait for step 3
        train_step(model, wrapper, x, y, loss_scale=float('inf') if step == 2 else 1.0)
        assert masked_are_zero(masker), step
        if step == 2:
            assert ctrl.pending
            assert all(torch.equal(a, b) for a, b in zip(w_before, model.parameters()))
            assert wrapper.loss_scaler.get_scale() == 2.**9  # backed off
        stats = ctrl.pop_stats()
        if stats is not None:
            seen.append(stats['t'])
    assert seen == [3, 4, 6]
    assert not ctrl.pending


def test_amp_growth_scores_are_unscaled(cpu_grad_scaler):
    """The gradient seen by the update equals the fp32 gradient, not the scaled one."""
    grads = {}
    for scale in (1.0, 2.**12):  # same autocast context, loss scaled or not
        model, masker, ctrl, wrapper = build('AdamW', AmpSViTEOptimWrapper)
        cpu_grad_scaler(wrapper, scale)
        captured = []
        original = ctrl._update

        def spy(rate, ctrl=ctrl, original=original, captured=captured):
            captured.append({n: p.grad.clone() for n, p, _ in ctrl.masker.items()})
            return original(rate)

        ctrl._update = spy
        for x, y in toy_batches(2):
            train_step(model, wrapper, x, y)
        grads[scale] = captured[0]
    for n, g in grads[1.0].items():
        assert g.abs().max() > 0
        torch.testing.assert_close(grads[2.**12][n], g, rtol=1e-5, atol=1e-7)


def test_algorithm1_with_loss_scaling_unscales_skips_and_updates_the_scale(cpu_grad_scaler):
    model, masker, ctrl, wrapper = build('AdamW', AmpSViTEOptimWrapper, algorithm1=True, decay='cosine_t_end')
    cpu_grad_scaler(wrapper)
    for step, (x, y) in enumerate(toy_batches(4), start=1):
        w_old = {n: p.detach().clone() for n, p, _ in masker.items()}
        m_old = {n: m.clone() for n, _, m in masker.items()}
        train_step(model, wrapper, x, y)
        if step == 2:
            for n, p, m in masker.items():
                assert torch.equal(p[m & m_old[n]], w_old[n][m & m_old[n]])
            assert ctrl.last_stats['t'] == 2
    # every step (skipped or not) updated the scaler: the growth tracker counted 4 finite steps
    assert int(wrapper.loss_scaler._growth_tracker) == 4
    assert masked_are_zero(masker)


def reference_algorithm1(model, masks, batches, interval, t_end, alpha):
    """The paper's Algorithm 1 written out directly (plain torch, no mmsparse code): on
    t % dT == 0 and t < T_end prune ceil(r n) smallest |w| and grow as many largest |g| instead of the
    weight step; otherwise an AdamW step, then w <- w * m. Returns the masks after every step."""
    params = dict(model.named_parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    history = []
    for t, (x, y) in enumerate(batches, start=1):
        opt.zero_grad()
        model(x, y, mode='loss')['loss'].backward()
        if t % interval == 0 and t < t_end:
            r = alpha / 2 * (1 + math.cos(math.pi * t / t_end))
            for name in masks:
                w, g = params[name].detach().flatten(), params[name].grad.flatten()
                m = masks[name].flatten().clone()
                active = m.nonzero().flatten()
                k = math.ceil(r * active.numel())
                m[active[torch.argsort(w[active].abs(), stable=True)[:k]]] = False
                inactive = (~m).nonzero().flatten()
                m[inactive[torch.argsort(-g[inactive].abs(), stable=True)[:k]]] = True
                masks[name] = m.view_as(masks[name])
        else:
            opt.step()
        with torch.no_grad():
            for name, m in masks.items():
                params[name].mul_(m)
        history.append({n: m.clone() for n, m in masks.items()})
    return history


def test_algorithm1_matches_an_independent_implementation_at_every_step():
    import copy
    model, masker, ctrl, wrapper = build('AdamW', algorithm1=True, decay='cosine_t_end')
    ref_model = copy.deepcopy(model)
    ref_history = reference_algorithm1(ref_model, {
        n: m.clone()
        for n, _, m in masker.items()
    }, toy_batches(STEPS), INTERVAL, T_END, 0.5)
    for step, (x, y) in enumerate(toy_batches(STEPS)):
        train_step(model, wrapper, x, y)
        for n, _, m in masker.items():
            assert torch.equal(m, ref_history[step][n]), (step + 1, n)
    for a, b in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)

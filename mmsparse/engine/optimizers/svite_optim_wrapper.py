"""Optimizer wrappers that keep SViTE masks exact and run prune-and-grow while gradients exist.

Why the update lives in the optimizer wrapper and not in a hook (docs/method/svite.md, 1.5): mmengine's
``OptimWrapper.update_params`` runs ``backward -> step() -> zero_grad()`` inside ``train_step``, and
``zero_grad`` sets every ``.grad`` to None. By ``after_train_iter`` the gradient that gradient-based
growth (|dL/dw| at inactive positions) and the head scores need is gone. ``step()`` is the last
place where it exists (already DDP-averaged, and unscaled in place by ``GradScaler.step`` under AMP),
so these wrappers do, per optimizer step:

1. the ordinary step (AMP: unscale, step unless non-finite, update the scale);
2. ``controller.after_step``: t <- t + 1, w <- w * m (also after AMP-skipped steps: decoupled weight
   decay and Adam moments would otherwise revive masked weights), and on update steps prune and grow
   from the current ``.grad`` (deferred to the next step if a gradient is non-finite).

With ``algorithm1=True`` (the controller's flag, set by ``PruneGrowHook``) an update step replaces the
optimizer step (the paper's Algorithm 1): gradients are unscaled (AMP), the step is skipped, masks
are updated, then the loss scale is updated as for any step.

Without a controller attached (``PruneGrowHook`` attaches one in ``before_train``) the wrappers behave
exactly like their parents.
"""
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmsparse.registry import OPTIM_WRAPPERS
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper

__all__ = ['SViTEOptimWrapper', 'AmpSViTEOptimWrapper', 'CPUAmpSViTEOptimWrapper', 'SViTEStepMixin']


class SViTEStepMixin:
    """``step()`` with mask re-application and prune-and-grow; mixed in front of an OptimWrapper."""

    sparse_controller = None

    def attach_sparsity(self, controller) -> None:
        """Attach a :class:`~mmsparse.sparsity.dynamic_sparsity.PruneGrowController`."""
        self.sparse_controller = controller

    def _unscale_for_update(self) -> None:
        """Make ``.grad`` the true gradient before a skipped (Algorithm 1) step. No-op in fp32."""

    def _after_skipped_step(self) -> None:
        """Finish a skipped step (AMP: update the loss scale). No-op in fp32."""

    def step(self, **kwargs) -> None:
        ctrl = self.sparse_controller
        if ctrl is None:
            super().step(**kwargs)
            return
        if ctrl.skips_optimizer_step(ctrl.t + 1):
            self._unscale_for_update()
            ctrl.after_step(self.optimizer)
            self._after_skipped_step()
        else:
            super().step(**kwargs)
            ctrl.after_step(self.optimizer)


@OPTIM_WRAPPERS.register_module()
class SViTEOptimWrapper(SViTEStepMixin, OptimWrapper):
    """fp32 ``OptimWrapper`` for SViTE / S2ViTE (see the module docstring for why)."""


@OPTIM_WRAPPERS.register_module()
class AmpSViTEOptimWrapper(SViTEStepMixin, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` (GPU, fp16 loss scaling) for SViTE / S2ViTE.

    ``GradScaler.step`` unscales ``.grad`` in place before stepping, so growth scores are unscaled;
    an overflowed step is skipped by the scaler, the masks are still re-applied and the update is
    deferred (non-finite gradients).
    """

    def _unscale_for_update(self) -> None:
        self.loss_scaler.unscale_(self.optimizer)

    def _after_skipped_step(self) -> None:
        self.loss_scaler.update(self._scale_update_param)


@OPTIM_WRAPPERS.register_module()
class CPUAmpSViTEOptimWrapper(SViTEStepMixin, CPUAmpOptimWrapper):
    """bf16-autocast CPU wrapper (what ``--amp`` means without a GPU) for SViTE / S2ViTE.

    bf16 needs no loss scaling, so the step is the fp32 one.
    """

"""``EvolutionSearchLoop``: SparseViT's resource-constrained search (docs/method/sparsevit.md, 3.3).

It is a *train* loop (set as ``train_cfg``, run by ``runner.train()``, weights from ``load_from``) that
trains nothing: it re-orders the runner's own parts. Candidates are scored by the task's own val
dataloader and evaluator (``candidate_evaluator``), so the same loop searches Mask R-CNN (COCO AP),
UPerNet (mIoU), FCOS3D or a classifier; the state is saved after every candidate (``search_state``)
and the outputs are written by ``search_report``. The search logic itself is the framework-free
:class:`~mmsparse.sparsity.evolution.EvolutionSearch`.

Training hooks (``before_train``/``*_train_iter``) are deliberately not called: a sparsity-aware
adaptation hook inherited from the training config would otherwise re-sample ratios.
"""
import copy

from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop

from mmsparse.registry import LOOPS
from mmsparse.sparsity.evolution import EvolutionSearch
from mmsparse.sparsity.search_space import DEFAULT_CHOICES, SwinRatioSpace
from ..ratio_targets import find_ratio_targets
from .candidate_evaluator import CandidateEvaluator, target_depths
from .search_constraints import SearchConstraint
from .search_progress import SearchProgress
from .search_report import write_search_outputs
from .search_state import STATE_VERSION, SearchStateFiles  # noqa: F401  (STATE_VERSION: importable here)


@LOOPS.register_module()
class EvolutionSearchLoop(BaseLoop):
    """Evolutionary search of per-pair window-pruning ratios under a MACs or latency budget.

    Args:
        runner (Runner): the runner.
        dataloader (DataLoader | dict): the val dataloader the candidates are scored on.
        evaluator (Evaluator | dict | list): the val evaluator.
        score_key (str): metric to maximise, e.g. ``'coco/bbox_mAP'``, ``'mIoU'``.
        population, parents, num_mutation, num_crossover, mutation_prob, max_candidates, seed,
            rejoin_repeats, max_tries: as in ``EvolutionSearch`` (docs/method/sparsevit.md, 3.3).
        generations (int): populations to form. Default 20.
        constraint (dict): the budget, validated by :class:`SearchConstraint` (its keys and units):
            ``kind='macs'`` (the backbone's ``macs()``, or an injected ``cost_fn``) or
            ``kind='latency'`` (a look-up table or direct timing); ``max`` and/or ``min`` bound it.
            Equal scores are broken by the lower cost.
        input_shape (tuple[int, int]): image size for MACs and latency. Default (672, 672).
        val_subset (int | list[int] | None): evaluate on the first N val samples or these indices
            (needs a dataloader given as a dict whose dataset accepts ``indices``).
        choices (Sequence[float]), fixed (dict | None), depths (Sequence[int] | None): the search
            space (docs/method/sparsevit.md, 3.2); ``depths`` defaults to the backbone's.
        report_references (bool): evaluate dense and uniform 0.5 before searching.
        resume (bool): continue from ``<work_dir>/search_state.json`` if it exists.
        base_config (str | None): config the fine-tune config inherits; default the run's config.
        finetune_name (str | None): ``finetune_<name>.py``; default ``<config stem>_<kind><max>``.
        finetune (dict | None): top-level overrides written into the fine-tune config (schedule).
        fp16 (bool): autocast during evaluation.
        compile (bool | dict): ``torch.compile`` the backbone for scoring (see ``CandidateEvaluator``;
            it pays only when scoring one candidate takes much longer than compiling). Default False.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator,
                 score_key=None,
                 population=100,
                 parents=25,
                 num_mutation=None,
                 num_crossover=None,
                 mutation_prob=0.1,
                 generations=20,
                 max_candidates=10000,
                 constraint=None,
                 input_shape=(672, 672),
                 val_subset=None,
                 seed=0,
                 choices=DEFAULT_CHOICES,
                 fixed=None,
                 depths=None,
                 rejoin_repeats=True,
                 max_tries=1000,
                 report_references=True,
                 resume=False,
                 base_config=None,
                 finetune_name=None,
                 finetune=None,
                 fp16=False,
                 compile=False):
        if not score_key:
            raise ValueError("score_key must name the metric to maximise, e.g. 'coco/bbox_mAP'")
        if val_subset is not None:
            if not isinstance(dataloader, dict):
                raise ValueError('val_subset needs the dataloader given as a config dict')
            dataloader = copy.deepcopy(dataloader)
            dataloader['dataset']['indices'] = val_subset
        super().__init__(runner, dataloader)
        self.score_key, self.resume = score_key, resume
        self.constraint = SearchConstraint(constraint)
        self.input_shape = tuple(int(x) for x in input_shape)
        self.report_references = report_references
        self.finetune_options = dict(
            base_config=base_config or getattr(runner.cfg, 'filename', None),
            finetune_name=finetune_name,
            finetune=finetune)
        self.targets = find_ratio_targets(runner.model, 'EvolutionSearchLoop')
        self.space = SwinRatioSpace(depths or target_depths(self.targets), choices, fixed)
        self.candidates = CandidateEvaluator(runner, self.dataloader, evaluator, score_key, self.targets,
                                             self.space, self.constraint, self.input_shape, fp16, compile)
        self.files = SearchStateFiles(runner.work_dir)
        self.references = {}
        self.search = EvolutionSearch(
            self.space,
            self.candidates.fitness,
            self.candidates.check,
            population=population,
            parents=parents,
            num_mutation=num_mutation,
            num_crossover=num_crossover,
            mutation_prob=mutation_prob,
            max_candidates=max_candidates,
            max_generations=generations,
            max_tries=max_tries,
            seed=seed,
            rejoin_repeats=rejoin_repeats,
            constraint_desc=self.constraint.describe(self.input_shape),
            broadcast_fn=self._broadcast,
            candidate_callback=self._after_candidate,
            fingerprint=self.candidates.fingerprint(val_subset),
            cost_key=self.constraint.kind)
        self.progress = SearchProgress(self.search, score_key)
        self.search.generation_callback = self.progress.after_generation

    # ------------------------------------------------------------------ mmengine loop interface
    @property
    def max_epochs(self):
        return self.search.max_generations

    @property
    def max_iters(self):
        return self.search.max_candidates

    @property
    def epoch(self):
        return self.search.generation

    @property
    def iter(self):
        return self.search.num_candidates

    @property
    def lut_errors(self):
        """Relative errors of the latency LUT against direct timing (``constraint.validate``), or None."""
        return self.candidates.lut_errors

    # ------------------------------------------------------------------ search callbacks
    @staticmethod
    def _broadcast(genes):
        """Every rank uses rank 0's draw (a no-op without a process group)."""
        obj = [genes]
        broadcast_object_list(obj, src=0)
        return obj[0]

    def _after_candidate(self, record):
        self.files.save(self.search, self.references)  # first the state, then the log
        self.files.append(record)
        self.progress.after_candidate(record)

    # ------------------------------------------------------------------ running
    def run(self):
        """Search until the generation or candidate budget is used up; returns the model, which is
        left with the best ratios set."""
        self.candidates.prepare()
        self.references = self.files.start(self.search, self.resume)
        if self.report_references:  # a kill after one reference does not score it again
            self.candidates.score_references(self.references,
                                             lambda: self.files.save(self.search, self.references))
        desc = self.constraint.describe(self.input_shape)
        print_log(
            f'evolution search: {self.space.size()} configurations, constraint {desc}, score '
            f'{self.score_key}',
            logger='current')
        self.search.run()
        best = self.search.best
        if best is None:
            raise RuntimeError(f'no feasible candidate under {desc}')
        block_ratios = self.space.to_block_ratios(best['genes'])
        self.candidates.set_ratios(block_ratios)
        if is_main_process():  # best_ratios.json, pareto.png, finetune_<name>.py
            hooks, names = self.runner.cfg.get('custom_hooks', None), [n for n, _ in self.targets]
            write_search_outputs(self.runner.work_dir, best,
                                 block_ratios, self.score_key, self.search.history, self.references,
                                 self.space.describe(), self.constraint, names, hooks, self.lut_errors,
                                 **self.finetune_options)
        return self.runner.model

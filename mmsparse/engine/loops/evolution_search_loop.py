"""``EvolutionSearchLoop``: SparseViT's resource-constrained search (spec sparsevit.md §5) as a loop.

It is a *train* loop (set as ``train_cfg``, run by ``runner.train()``, weights from ``load_from``) that
trains nothing: it re-orders the runner's own parts. Each candidate sets its ratios on every module
that has ``set_pruning_ratios`` and is scored by the task's own val dataloader and evaluator
(``model.val_step`` -> ``evaluator.process`` -> ``evaluator.evaluate``), so the same loop searches
Mask R-CNN (COCO AP), UPerNet (mIoU), FCOS3D or a classifier. The search logic itself is the
framework-free :class:`~mmsparse.sparsity.evolution.EvolutionSearch`.

Training hooks (``before_train``/``*_train_iter``) are deliberately not called: a sparsity-aware
adaptation hook inherited from the training config would otherwise re-sample ratios.
"""
import copy
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop
from mmengine.utils import ProgressBar

from mmsparse.registry import LOOPS
from mmsparse.sparsity.evolution import EvolutionSearch
from mmsparse.sparsity.search_space import DEFAULT_CHOICES, SwinRatioSpace
from ..compile_backbone import compile_backbones
from ..ratio_targets import find_ratio_targets
from .search_constraints import UNITS, SearchConstraint, build_latency_fn, build_macs_fn
from .search_report import atomic_write, finetune_config_text, plot_pareto, write_best

# 2: JSON (search_state.json); 1 was a pickle (search_state.pkl), which is refused on resume
STATE_VERSION = 2


@LOOPS.register_module()
class EvolutionSearchLoop(BaseLoop):
    """Evolutionary search of per-pair window-pruning ratios under a MACs or latency budget.

    Args:
        runner (Runner): the runner.
        dataloader (DataLoader | dict): the val dataloader the candidates are scored on.
        evaluator (Evaluator | dict | list): the val evaluator.
        score_key (str): metric to maximise, e.g. ``'coco/bbox_mAP'``, ``'mIoU'``.
        population, parents, num_mutation, num_crossover, mutation_prob: §5 (100, 25, 50, 50, 0.1).
        generations (int): populations to form. Default 20.
        max_candidates (int): budget of drawn candidates (feasible or not). Default 10,000.
        constraint (dict): ``kind='macs'`` (G MACs of the backbone, ``batch`` images of
            ``input_shape``; ``cost_fn(block_ratios) -> G`` may be injected, else
            ``mmsparse.sparsity.cost.swin_macs`` with ``cost_kwargs``) or ``kind='latency'`` (ms,
            from the LUT file ``lut`` keyed by device/shape/batch, measured block by block when
            missing (``lut_warmup``, ``lut_iters``, ``lut_rounds``, ``lut_fit``: see
            ``search_constraints.build_latency_fn``), or timed per candidate with ``direct=True``,
            ``warmup``, ``iters``;
            ``validate=N`` compares the LUT with direct timing on N random configurations and logs
            the error); ``max`` and/or ``min`` bound it.
        input_shape (tuple[int, int]): image size for MACs and latency. Default (672, 672).
        val_subset (int | list[int] | None): evaluate on the first N val samples or these indices
            (needs a dataloader given as a dict whose dataset accepts ``indices``).
        seed (int): search seed. Default 0.
        choices (Sequence[float]), fixed (dict | None), depths (Sequence[int] | None): the search
            space (§3); ``depths`` defaults to the backbone's.
        rejoin_repeats (bool): a cached feasible candidate joins the population again (reference).
        max_tries (int): consecutive rejected candidates before giving up.
        report_references (bool): evaluate dense and uniform 0.5 before searching (§5.7).
        resume (bool): continue from ``<work_dir>/search_state.json`` if it exists.
        base_config (str | None): config the fine-tune config inherits; default the run's config.
        finetune_name (str | None): ``finetune_<name>.py``; default ``<config stem>_<kind><max>``.
        finetune (dict | None): top-level overrides written into the fine-tune config (schedule).
        fp16 (bool): autocast during evaluation.
        compile (bool | dict): ``torch.compile`` the backbone for scoring (a dict is passed to
            ``compile_backbones``: ``backend``, ``mode``, ``dynamic``). Every candidate is a new ratio
            set, hence one compile per candidate (and per image shape); the previous candidate's
            compiled code is dropped so memory does not grow. It pays only when scoring one candidate
            takes much longer than compiling, e.g. a large val set of fixed-size images on a GPU.
            Latency LUTs are measured before compiling, on the eager backbone. Default False.
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
        if isinstance(evaluator, (dict, list)):
            evaluator = runner.build_evaluator(evaluator)
        if not isinstance(evaluator, Evaluator):
            raise ValueError(f'evaluator must be an Evaluator or its config, got {type(evaluator)}')
        self.evaluator = evaluator
        if hasattr(self.dataloader.dataset, 'metainfo'):
            self.evaluator.dataset_meta = self.dataloader.dataset.metainfo
        self.score_key = score_key
        self.constraint = SearchConstraint(constraint)
        self.input_shape = tuple(int(x) for x in input_shape)
        self.val_subset = val_subset
        self.report_references = report_references
        self.resume = resume
        self.base_config = base_config
        self.finetune_name = finetune_name
        self.finetune = finetune
        self.fp16 = fp16
        self.compile_kwargs = _check_compile(compile)
        self.targets = find_ratio_targets(runner.model, 'EvolutionSearchLoop')
        self.space = SwinRatioSpace(depths or self._backbone_depths(), choices, fixed)
        self.references = {}
        self._cost_fn = None
        self._latency_fn = None
        self.lut_errors = None
        self._bar = None
        self._pending_log = None  # the generation summary, logged once its progress bar is complete
        self.search = EvolutionSearch(
            self.space,
            self._fitness,
            self._check,
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
            constraint_desc=self._constraint_desc(),
            broadcast_fn=self._broadcast,
            candidate_callback=self._after_candidate,
            generation_callback=self._after_generation,
            fingerprint=self._fingerprint())

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

    # ------------------------------------------------------------------ set-up
    def _constraint_desc(self):
        return self.constraint.describe(self.input_shape)

    def _fingerprint(self):
        """What cached feasibility/fitness depend on besides the genes: a resume must not change it."""
        return json.loads(
            json.dumps(
                dict(
                    constraint=self.constraint.fingerprint(),
                    input_shape=self.input_shape,
                    score_key=self.score_key,
                    val_subset=self.val_subset,
                    num_samples=len(self.dataloader.dataset)),
                default=str))

    def _backbone_depths(self):
        depths = None
        for name, m in self.targets:
            ratios = m.get_pruning_ratios() if callable(getattr(m, 'get_pruning_ratios', None)) else None
            d = [len(s) for s in ratios] if ratios is not None else getattr(m, 'depths', None)
            if d is None:
                raise ValueError(f'cannot tell the depths of {name}: pass depths= to the search loop')
            if depths is not None and list(d) != list(depths):
                raise ValueError(f'backbones have different depths ({depths} vs {name}: {d}); pass '
                                 'depths= and make them agree')
            depths = list(d)
        return depths

    # ------------------------------------------------------------------ candidate evaluation
    def _set_ratios(self, block_ratios):
        for _, m in self.targets:
            m.set_pruning_ratios(copy.deepcopy(block_ratios))

    @torch.no_grad()
    def _evaluate(self, block_ratios):
        """The task metrics of the model with ``block_ratios`` on the (subset of the) val set."""
        self._set_ratios(block_ratios)
        self.runner.model.eval()
        for data_batch in self.dataloader:
            with torch.autocast(device_type=self._device().type, enabled=self.fp16):
                outputs = self.runner.model.val_step(data_batch)
            self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.compile_kwargs is not None:
            torch.compiler.reset()  # the next candidate has other ratios: its graphs are new ones
        if self.score_key not in metrics:
            raise ValueError(f'score_key {self.score_key!r} is not among the evaluator metrics '
                             f'{sorted(metrics)}')
        return metrics

    def _fitness(self, genes):
        return float(self._evaluate(self.space.to_block_ratios(genes))[self.score_key])

    def _device(self):
        p = next(self.runner.model.parameters(), None)
        return p.device if p is not None else torch.device('cpu')

    def _build_cost_fns(self):
        c, backbone = self.constraint, self.targets[0][1]
        if c.kind == 'macs' or c.cost_fn is not None:
            self._cost_fn = c.cost_fn or build_macs_fn(backbone, self.input_shape, c.batch, c.cost_kwargs)
        if c.kind == 'latency':
            self._latency_fn, self.lut_errors = build_latency_fn(backbone, c, self.input_shape,
                                                                 self._device(), self.runner.work_dir,
                                                                 self.space)

    def _check(self, genes):
        """``(feasible, values)``: MACs (G) and/or latency (ms) against the configured window."""
        block_ratios = self.space.to_block_ratios(genes)
        values = {}
        if self._cost_fn is not None:
            values['macs'] = float(self._cost_fn(block_ratios))
        if self._latency_fn is not None:
            values['latency'] = float(self._latency_fn(block_ratios))
        return self.constraint.feasible(values[self.constraint.kind]), values

    @staticmethod
    def _broadcast(genes):
        """Every rank uses rank 0's draw (a no-op without a process group)."""
        obj = [genes]
        broadcast_object_list(obj, src=0)
        return obj[0]

    # ------------------------------------------------------------------ state and logs
    @property
    def state_path(self):
        return osp.join(self.runner.work_dir, 'search_state.json')

    @property
    def history_path(self):
        return osp.join(self.runner.work_dir, 'search_history.jsonl')

    def _save_state(self):
        if is_main_process():
            state = dict(version=STATE_VERSION, search=self.search.state_dict(), references=self.references)
            atomic_write(self.state_path, json.dumps(state), mode='w')

    def _load_state(self):
        # every rank loads (resuming on rank 0 alone would let the ranks disagree)
        try:
            with open(self.state_path) as f:
                state = json.load(f)
        except ValueError as e:
            raise ValueError(f'{self.state_path} is not a valid search state ({e}); it was left '
                             'as it is: move it away to start a new search') from e
        if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
            version = state.get('version') if isinstance(state, dict) else None
            raise ValueError(f'{self.state_path}: search state version {version!r}, this mmsparse '
                             f'reads version {STATE_VERSION}')
        self.search.load_state_dict(state['search'])
        self.references = state['references']

    def _after_candidate(self, record):
        self._save_state()  # first the state, then the log: a resume rewrites the log from the state
        if not is_main_process():
            return
        with open(self.history_path, 'a') as f:
            f.write(json.dumps(record) + '\n')
        if record['joined']:  # one progress bar per population, advanced by each member that joins
            completed = record['generation'] != self.search.generation  # this member filled it
            if self._bar is None:
                size = self.search.population_size
                joined_before = (size if completed else len(self.search.population)) - 1
                self._bar = ProgressBar(self.search.population_size)
                for _ in range(joined_before):  # only after a resume
                    self._bar.update()
            self._bar.update()
            if completed:
                self._bar = None
                sys.stdout.write('\n')  # end the progress bar's line before the log line
        if self._pending_log is not None:
            print_log(self._pending_log, logger='current')
            self._pending_log = None

    def _after_generation(self, generation, members, parents):
        best = self.search.best
        scores = [m['fitness'] for m in members]
        self._pending_log = (
            f'generation {generation + 1}/{self.max_epochs}: best {self.score_key} '
            f'{best["fitness"]:.4f} at {self._values_text(best["constraints"])} '
            f'(candidate {best["index"]}); population mean {sum(scores) / len(scores):.4f}, '
            f'parents >= {parents[-1]["fitness"]:.4f}; candidates {self.search.num_candidates}/'
            f'{self.max_iters}, fitness evaluations {self.search.num_evaluations}')

    @staticmethod
    def _values_text(values):
        return ', '.join(f'{v:.3f} {UNITS.get(k, k)}' for k, v in values.items())

    # ------------------------------------------------------------------ running
    def run(self):
        """Search until the generation or candidate budget is used up; returns the model, which is
        left with the best ratios set."""
        self._build_cost_fns()
        if self.compile_kwargs is not None:
            compile_backbones(self.runner.model, 'EvolutionSearchLoop', **self.compile_kwargs)
        legacy = osp.join(self.runner.work_dir, 'search_state.pkl')
        if self.resume and not osp.isfile(self.state_path) and osp.isfile(legacy):
            raise ValueError(
                f'{legacy} is a search state of an older mmsparse, saved as a pickle. Loading a '
                'pickle can run arbitrary code, so mmsparse reads only search_state.json now. Start '
                'a new search in another --work-dir (the old search_history.jsonl there lists every '
                'candidate it evaluated); the old file is left untouched.')
        if self.resume and osp.isfile(self.state_path):
            self._load_state()
            print_log(
                f'resumed the search from {self.state_path} at candidate '
                f'{self.search.num_candidates}, generation {self.search.generation}',
                logger='current')
        elif self.resume:
            print_log(f'--resume: no {self.state_path} yet, starting a new search', logger='current')
        if is_main_process():  # the log always equals the state's history, also after a kill
            atomic_write(self.history_path, ''.join(json.dumps(r) + '\n' for r in self.search.history))
        if self.report_references:
            self._evaluate_references()
        print_log(
            f'evolution search: {self.space.size()} configurations, constraint '
            f'{self._constraint_desc()}, score {self.score_key}',
            logger='current')
        self.search.run()
        best = self.search.best
        if best is None:
            raise RuntimeError(f'no feasible candidate under {self._constraint_desc()}')
        self._set_ratios(self.space.to_block_ratios(best['genes']))
        if is_main_process():
            self._write_outputs(best)
        return self.runner.model

    def _evaluate_references(self):
        """§5.7: report dense and uniform 0.5 before searching."""
        for name, value in (('dense', 0.0), ('uniform_0.5', 0.5)):
            if name in self.references:  # evaluated before a kill
                continue
            try:
                genes = self.space.uniform(value)
            except ValueError:
                continue  # 0.5 not on a custom grid
            feasible, values = self._check(genes)
            fitness = self._fitness(genes)
            self.references[name] = dict(genes=genes, feasible=feasible, constraints=values, fitness=fitness)
            self._save_state()  # a kill after this reference does not evaluate it again
            print_log(
                f'reference {name}: {self.score_key} {fitness:.4f} at {self._values_text(values)}'
                f'{"" if feasible else " (outside the constraint)"}',
                logger='current')

    def _base_custom_hooks(self, base):
        """``custom_hooks`` of the config the fine-tune config inherits (the run's as a fallback)."""
        try:
            return Config.fromfile(base).get('custom_hooks', None)
        except Exception as e:  # noqa: BLE001  (a config we cannot parse: say so, use the run's)
            print_log(
                f'could not read custom_hooks from {base} ({e}); using the running config', logger='current')
            return self.runner.cfg.get('custom_hooks', None)

    def _config_paths(self):
        """Where each target sits under ``model`` in a config (``'backbone'``; ``''`` = the model)."""
        paths = []
        for name, _ in self.targets:
            if any(part.isdigit() for part in name.split('.')):
                print_log(
                    f'{name} sits in a module list, which a config cannot address: set its ratios '
                    'in the fine-tune config by hand',
                    logger='current')
                continue
            paths.append(name)
        return paths

    def _write_outputs(self, best):
        work_dir = self.runner.work_dir
        block_ratios = self.space.to_block_ratios(best['genes'])
        write_best(
            osp.join(work_dir, 'best_ratios.json'),
            best,
            block_ratios,
            self.score_key,
            self.references,
            self.space.describe(),
            lut_errors=self.lut_errors)
        plot_pareto(
            osp.join(work_dir, 'pareto.png'), self.search.history, self.constraint.kind, self.score_key,
            self.references)
        base = self.base_config or getattr(self.runner.cfg, 'filename', None)
        if not base or not osp.isfile(base):
            print_log(
                'no config file to inherit (pass base_config=): the fine-tune config was not '
                'written',
                logger='current')
            return
        c = self.constraint
        name = self.finetune_name or (f'{osp.splitext(osp.basename(base))[0]}_{c.kind}'
                                      f'{"" if c.max is None else format(c.max, "g")}')
        hooks = self._base_custom_hooks(base)
        if hooks is not None:  # fine-tuning keeps the ratios fixed: drop the sampling hook
            hooks = [
                h.to_dict() if hasattr(h, 'to_dict') else dict(h) for h in hooks
                if 'SparsityAwareAdaptationHook' not in str(h.get('type', ''))
            ]
        text = finetune_config_text(
            osp.abspath(base),
            self._config_paths(),
            block_ratios,
            hooks,
            self.finetune,
            header=f'# found by EvolutionSearchLoop: {self.score_key} {best["fitness"]:.4f} at '
            f'{self._values_text(best["constraints"])}; genes {json.dumps(best["genes"])}')
        path = osp.join(work_dir, f'finetune_{name}.py')
        atomic_write(path, text)
        print_log(
            f'best ratios {block_ratios} written to {work_dir} (best_ratios.json, pareto.png, '
            f'{osp.basename(path)})',
            logger='current')


def _check_compile(compile):
    """``compile`` option -> ``compile_backbones`` keyword arguments, or None when off."""
    if compile is False or compile is None:
        return None
    if compile is True:
        return {}
    if not isinstance(compile, dict):
        raise ValueError(f'compile must be a bool or a dict, got {type(compile).__name__}')
    allowed = ('backend', 'mode', 'dynamic')
    unknown = sorted(set(compile) - set(allowed))
    if unknown:
        raise ValueError(f'compile: unknown key(s) {unknown}; allowed keys: {list(allowed)}')
    return dict(compile)

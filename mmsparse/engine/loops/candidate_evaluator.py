"""How the evolution search scores and costs one candidate on the runner's own model.

Scoring sets the candidate's ratios on every target module and runs the task's val dataloader and
evaluator (``model.val_step`` -> ``evaluator.process`` -> ``evaluator.evaluate``), optionally under
autocast or on a compiled backbone; costing asks the constraint's MACs or latency function.
"""
import copy
import json

import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log

from ..compile_backbone import compile_backbones
from .search_constraints import build_latency_fn, build_macs_fn
from .search_report import values_text


class CandidateEvaluator:
    """Scores (task metric) and costs (MACs / latency) of ratio configurations.

    Args:
        runner (Runner): the runner whose model is scored.
        dataloader (DataLoader): the (subset of the) val dataloader.
        evaluator (Evaluator | dict | list): the val evaluator or its config.
        score_key (str): the metric that is the fitness, e.g. ``'coco/bbox_mAP'``.
        targets (list[tuple[str, nn.Module]]): the modules the ratios are set on.
        space (SwinRatioSpace): turns genes into per-stage per-block ratios.
        constraint (SearchConstraint): what a candidate costs and the allowed window.
        input_shape (tuple[int, int]): image size ``(H, W)`` in pixels for MACs and latency.
        fp16 (bool): autocast during evaluation.
        compile (bool | dict): ``torch.compile`` the backbones for scoring (a dict is passed to
            ``compile_backbones``: ``backend``, ``mode``, ``dynamic``). Every candidate is a new ratio
            set, hence one compile per candidate (and image shape); the previous candidate's compiled
            code is dropped so memory does not grow. Latency tables are measured before compiling,
            on the eager backbone.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator,
                 score_key,
                 targets,
                 space,
                 constraint,
                 input_shape,
                 fp16=False,
                 compile=False):
        if isinstance(evaluator, (dict, list)):
            evaluator = runner.build_evaluator(evaluator)
        if not isinstance(evaluator, Evaluator):
            raise ValueError(f'evaluator must be an Evaluator or its config, got {type(evaluator)}')
        if hasattr(dataloader.dataset, 'metainfo'):
            evaluator.dataset_meta = dataloader.dataset.metainfo
        self.runner = runner
        self.dataloader = dataloader
        self.evaluator = evaluator
        self.score_key = score_key
        self.targets = targets
        self.space = space
        self.constraint = constraint
        self.input_shape = input_shape
        self.fp16 = fp16
        self.compile_kwargs = check_compile(compile)
        self.cost_fn = None  # block_ratios -> G MACs
        self.latency_fn = None  # block_ratios -> ms
        self.lut_errors = None

    def prepare(self):
        """Build the cost functions (a latency table is measured here, on the eager backbone), then
        compile the backbones if asked."""
        c, backbone = self.constraint, self.targets[0][1]
        if c.kind == 'macs' or c.cost_fn is not None:
            self.cost_fn = c.cost_fn or build_macs_fn(backbone, self.input_shape, c.batch, c.cost_kwargs,
                                                      self.targets[0][0])
        if c.kind == 'latency':
            self.latency_fn, self.lut_errors = build_latency_fn(backbone, c, self.input_shape, self.device(),
                                                                self.runner.work_dir, self.space)
        if self.compile_kwargs is not None:
            compile_backbones(self.runner.model, 'EvolutionSearchLoop', **self.compile_kwargs)

    def fingerprint(self, val_subset):
        """What a candidate's score and cost depend on besides its genes (JSON types): a resumed
        search must not change it, or its cached results would no longer hold."""
        fingerprint = dict(
            constraint=self.constraint.fingerprint(),
            input_shape=self.input_shape,
            score_key=self.score_key,
            val_subset=val_subset,
            num_samples=len(self.dataloader.dataset))
        return json.loads(json.dumps(fingerprint, default=str))

    def device(self):
        p = next(self.runner.model.parameters(), None)
        return p.device if p is not None else torch.device('cpu')

    def set_ratios(self, block_ratios):
        for _, m in self.targets:
            m.set_pruning_ratios(copy.deepcopy(block_ratios))

    @torch.no_grad()
    def evaluate(self, block_ratios):
        """The task metrics of the model with ``block_ratios`` on the (subset of the) val set."""
        self.set_ratios(block_ratios)
        self.runner.model.eval()
        for data_batch in self.dataloader:
            with torch.autocast(device_type=self.device().type, enabled=self.fp16):
                outputs = self.runner.model.val_step(data_batch)
            self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.compile_kwargs is not None:
            torch.compiler.reset()  # the next candidate has other ratios: its graphs are new ones
        if self.score_key not in metrics:
            raise ValueError(f'score_key {self.score_key!r} is not among the evaluator metrics '
                             f'{sorted(metrics)}')
        return metrics

    def fitness(self, genes):
        """``genes -> float``: the score of the candidate, higher is better."""
        return float(self.evaluate(self.space.to_block_ratios(genes))[self.score_key])

    def check(self, genes):
        """``(feasible, values)``: MACs (G) and/or latency (ms) against the configured window."""
        block_ratios = self.space.to_block_ratios(genes)
        values = {}
        if self.cost_fn is not None:
            values['macs'] = float(self.cost_fn(block_ratios))
        if self.latency_fn is not None:
            values['latency'] = float(self.latency_fn(block_ratios))
        return self.constraint.feasible(values[self.constraint.kind]), values

    def score_references(self, references, saved):
        """Score and cost dense and uniform 0.5 (a yardstick for the log) into ``references``, skipping
        those already there (scored before a kill); ``saved()`` is called after each new one."""
        for name, value in (('dense', 0.0), ('uniform_0.5', 0.5)):
            if name in references:
                continue
            try:
                genes = self.space.uniform(value)
            except ValueError:
                continue  # 0.5 not on a custom grid
            feasible, values = self.check(genes)
            fitness = self.fitness(genes)
            references[name] = dict(genes=genes, feasible=feasible, constraints=values, fitness=fitness)
            saved()
            print_log(
                f'reference {name}: {self.score_key} {fitness:.4f} at {values_text(values)}'
                f'{"" if feasible else " (outside the constraint)"}',
                logger='current')


def target_depths(targets):
    """Blocks per stage of the ratio targets (``[(name, module)]``), which must agree."""
    depths = None
    for name, m in targets:
        ratios = m.get_pruning_ratios() if callable(getattr(m, 'get_pruning_ratios', None)) else None
        d = [len(s) for s in ratios] if ratios is not None else getattr(m, 'depths', None)
        if d is None:
            raise ValueError(f'cannot tell the depths of {name}: pass depths= to the search loop')
        if depths is not None and list(d) != list(depths):
            raise ValueError(f'backbones have different depths ({depths} vs {name}: {d}); pass '
                             'depths= and make them agree')
        depths = list(d)
    return depths


def check_compile(compile):
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

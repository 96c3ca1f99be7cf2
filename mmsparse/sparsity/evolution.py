"""Resource-constrained evolutionary search (docs/method/sparsevit.md, 3.3), free of any framework.

The engine only knows a search space (``sample``/``mutate``/``crossover``/``key``) and two injected
functions:

* ``constraint_fn(genes) -> (feasible: bool, values: dict)``, e.g. ``(macs <= 116.5, {'macs': 113.6})``;
* ``fitness_fn(genes) -> float``, higher is better (the task metric of the candidate).

It advances one candidate per :meth:`EvolutionSearch.step`; after every step :meth:`state_dict`
captures everything that decides the future (population, parents, cache, RNG, counters), so a run
killed after any candidate and resumed from its last state follows the same trajectory.
"""
import copy
import math

import numpy as np


class InfeasibleBudgetError(RuntimeError):
    """No candidate satisfied the constraint within ``max_tries`` consecutive draws."""


def _json_number(v):
    """numpy scalars and ints -> float/int so that records stay JSON-safe."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


class EvolutionSearch:
    """The reference's evolutionary search, step by step (SparseViT paper, Sec. 3.3).

    1. *Init*: draw with the space's sampler until ``population`` candidates are feasible.
    2. *Generation*: when ``population`` feasible members exist, the top ``parents`` by fitness
       become the parents and the population is emptied (parents are not carried over).
    3. *Children*: mutation while fewer than ``num_mutation`` members joined, then crossover;
       infeasible children are rejected, so a generation is ``num_mutation`` feasible mutants
       followed by ``num_crossover`` feasible crossovers.
    4. *Memoisation* by the space's canonical key: a repeat reuses the cached feasibility,
       constraint values and fitness (no new evaluation). A feasible repeat joins the population
       again, as in the reference, unless ``rejoin_repeats=False``.
    5. *Best*: the highest fitness among feasible candidates. Equal fitness is broken by the lower
       cost (the constraint value ``cost_key``), so the chosen point is never dominated by one with the
       same score and a smaller cost; then the first one wins. Parents are ranked the same way.

    Every drawn candidate, feasible or not, repeated or not, uses one unit of ``max_candidates``.

    If ``fitness_fn``/``constraint_fn`` raise, the generator has already drawn the candidate: continue
    from the last :meth:`state_dict` (taken in ``candidate_callback``), not from this object.

    Args:
        space: a search space (e.g. :class:`~mmsparse.sparsity.search_space.SwinRatioSpace`).
        fitness_fn (callable): ``genes -> float``, evaluated only for new feasible candidates.
        constraint_fn (callable): ``genes -> (feasible, values_dict)``, evaluated once per new key.
        population (int): P, feasible members per generation. Default 100.
        parents (int): K, top members kept as parents. Default 25.
        num_mutation (int | None): feasible mutants per generation; default P // 2.
        num_crossover (int | None): feasible crossovers per generation; default P - num_mutation.
        mutation_prob (float): per-gene probability of taking the fresh value. Default 0.1.
        max_candidates (int): budget of drawn candidates. Default 10,000.
        max_generations (int | None): stop once this many populations have been filled.
        max_tries (int): consecutive rejected draws before giving up with
            :class:`InfeasibleBudgetError`.
        seed (int): seed of the numpy generator.
        rejoin_repeats (bool): whether a cached feasible candidate joins the population again.
        constraint_desc (str): the budget in words, for error messages (``'macs <= 116.5 G'``).
        broadcast_fn (callable | None): ``genes -> genes`` applied to each drawn candidate; in a
            distributed run it broadcasts rank 0's draw so that every rank uses rank 0's.
        candidate_callback (callable | None): ``record -> None`` after each candidate, once the
            engine state is consistent (the place to save :meth:`state_dict` and log the record).
        generation_callback (callable | None): ``(generation, members, parents) -> None`` when a
            population fills, with its members (joining order) and the parents chosen from it.
        fingerprint (dict | None): JSON-safe description of what the cache depends on besides the
            genes (the constraint, the evaluation data); a resume with a different one is refused,
            because cached feasibility and fitness would no longer hold.
        cost_key (str | None): the entry of the constraint values (e.g. ``'macs'``) that breaks ties in
            fitness, lower first; a candidate without it ranks after those with it. None: the
            earlier candidate wins a tie.
    """

    def __init__(self,
                 space,
                 fitness_fn,
                 constraint_fn,
                 population=100,
                 parents=25,
                 num_mutation=None,
                 num_crossover=None,
                 mutation_prob=0.1,
                 max_candidates=10000,
                 max_generations=None,
                 max_tries=1000,
                 seed=0,
                 rejoin_repeats=True,
                 constraint_desc='the constraint',
                 broadcast_fn=None,
                 candidate_callback=None,
                 generation_callback=None,
                 fingerprint=None,
                 cost_key=None):
        if population < 1:
            raise ValueError(f'population must be >= 1, got {population}')
        num_mutation = population // 2 if num_mutation is None else int(num_mutation)
        num_crossover = population - num_mutation if num_crossover is None else int(num_crossover)
        if num_mutation < 0 or num_crossover < 0 or num_mutation + num_crossover != population:
            raise ValueError(f'num_mutation + num_crossover must equal population ({population}), got '
                             f'{num_mutation} + {num_crossover}')
        if not 1 <= parents <= population:
            raise ValueError(f'parents must be in [1, population={population}], got {parents}')
        if num_crossover > 0 and parents < 2:
            raise ValueError(f'parents must be >= 2 when num_crossover > 0, got {parents}')
        if not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f'mutation_prob must be in [0, 1], got {mutation_prob}')
        if max_candidates < 1:
            raise ValueError(f'max_candidates must be >= 1, got {max_candidates}')
        if max_generations is not None and max_generations < 1:
            raise ValueError(f'max_generations must be >= 1 or None, got {max_generations}')
        if max_tries < 1:
            raise ValueError(f'max_tries must be >= 1, got {max_tries}')
        self.space = space
        self.fitness_fn = fitness_fn
        self.constraint_fn = constraint_fn
        self.population_size = int(population)
        self.num_parents = int(parents)
        self.num_mutation = num_mutation
        self.num_crossover = num_crossover
        self.mutation_prob = float(mutation_prob)
        self.max_candidates = int(max_candidates)
        self.max_generations = max_generations
        self.max_tries = int(max_tries)
        self.seed = int(seed)
        self.rejoin_repeats = bool(rejoin_repeats)
        self.constraint_desc = constraint_desc
        self.broadcast_fn = broadcast_fn
        self.candidate_callback = candidate_callback
        self.generation_callback = generation_callback
        self.fingerprint = copy.deepcopy(fingerprint)
        self.cost_key = cost_key

        self.rng = np.random.default_rng(self.seed)
        self.num_candidates = 0  # drawn candidates (budget used)
        self.num_evaluations = 0  # fitness_fn calls
        self.generation = 0  # populations filled so far; 0 = the initial population is forming
        self.population = []  # members of the forming population: dict(index, key, genes, fitness)
        self.parents = []
        self.cache = {}  # key -> dict(feasible, constraints, fitness)
        self.history = []  # one JSON-safe record per candidate
        self.best = None  # the best feasible record
        self.consecutive_rejections = 0
        self.last_record = None

    # ------------------------------------------------------------------ running
    @property
    def done(self):
        """True once the candidate budget or the generation limit is used up."""
        if self.num_candidates >= self.max_candidates:
            return True
        return self.max_generations is not None and self.generation >= self.max_generations

    def run(self):
        """Step until :attr:`done`; returns the best record (None if nothing was feasible)."""
        while not self.done:
            self.step()
        return self.best

    def _propose(self):
        """Draw the next candidate and say which operator made it."""
        if not self.parents:
            return 'init', self.space.sample(self.rng)
        if len(self.population) < self.num_mutation:
            parent = self.parents[int(self.rng.integers(len(self.parents)))]
            return 'mutation', self.space.mutate(parent['genes'], self.rng, self.mutation_prob)
        i, j = self.rng.choice(len(self.parents), size=2, replace=False)
        return 'crossover', self.space.crossover(self.parents[int(i)]['genes'], self.parents[int(j)]['genes'],
                                                 self.rng)

    def _evaluate(self, genes):
        feasible, values = self.constraint_fn(genes)
        values = {str(k): _json_number(v) for k, v in dict(values).items()}
        fitness = None
        if feasible:  # fitness is the expensive part: never spend it on an infeasible candidate
            fitness = float(self.fitness_fn(genes))
            self.num_evaluations += 1
            if not math.isfinite(fitness):
                raise ValueError(f'fitness_fn returned {fitness} for {genes}; it must be finite')
        return dict(feasible=bool(feasible), constraints=values, fitness=fitness)

    def step(self):
        """Draw, check, (maybe) evaluate and place one candidate. Returns its record."""
        if self.done:
            raise RuntimeError('the search is finished (budget or generation limit reached)')
        origin, genes = self._propose()
        if self.broadcast_fn is not None:
            genes = self.broadcast_fn(genes)
        genes = self.space.canonical(genes)
        key = self.space.key(genes)
        cached = key in self.cache
        entry = self.cache[key] if cached else self._evaluate(genes)
        # the state changes only after evaluation, so an exception above leaves the last state valid
        self.cache[key] = entry
        joined = entry['feasible'] and (self.rejoin_repeats or not cached)
        record = dict(
            index=self.num_candidates,
            generation=self.generation,
            origin=origin,
            genes=dict(genes),
            feasible=entry['feasible'],
            constraints=dict(entry['constraints']),
            fitness=entry['fitness'],
            cached=cached,
            joined=joined)
        self.num_candidates += 1
        self.history.append(record)
        self.last_record = record
        if entry['feasible'] and (self.best is None or self.rank(entry) < self.rank(self.best)):
            self.best = record
        if joined:
            self.consecutive_rejections = 0
            self.population.append(
                dict(index=record['index'], key=key, genes=dict(genes), fitness=entry['fitness']))
        else:
            self.consecutive_rejections += 1
        if len(self.population) == self.population_size:
            self._next_generation()
        if self.candidate_callback is not None:
            self.candidate_callback(record)
        if self.consecutive_rejections >= self.max_tries and not self.done:
            raise InfeasibleBudgetError(
                f'no candidate satisfied {self.constraint_desc} in {self.max_tries} consecutive tries '
                f'(max_tries; last candidate {record["constraints"]}, '
                f'{"a repeat" if cached else "new"}); relax the budget or raise max_tries')
        return record

    def _next_generation(self):
        members = self.population
        # stable sort: among equal fitness and cost the earlier member ranks first
        parents = sorted(members, key=lambda m: self.rank(self.cache[m['key']]))[:self.num_parents]
        self.parents = [copy.deepcopy(p) for p in parents]
        finished = self.generation
        self.population = []
        self.generation += 1
        if self.generation_callback is not None:
            self.generation_callback(finished, members, self.parents)

    def rank(self, result):
        """Sort key of a feasible ``result`` (a record or cache entry with ``fitness`` and
        ``constraints``): higher fitness first, then lower cost."""
        if self.cost_key is None:
            return (-result['fitness'], )
        return (-result['fitness'], result['constraints'].get(self.cost_key, math.inf))

    # ------------------------------------------------------------------ state
    def _settings(self):
        return dict(
            space=self.space.describe(),
            population=self.population_size,
            parents=self.num_parents,
            num_mutation=self.num_mutation,
            num_crossover=self.num_crossover,
            mutation_prob=self.mutation_prob,
            seed=self.seed,
            rejoin_repeats=self.rejoin_repeats,
            fingerprint=self.fingerprint,
            cost_key=self.cost_key)

    def state_dict(self):
        """A deep snapshot of everything the future depends on, made of JSON types only (dicts with
        string keys, lists, numbers, strings, booleans, None): ``json.loads(json.dumps(s))`` equals it."""
        return to_json_types(
            dict(
                settings=self._settings(),
                rng=self.rng.bit_generator.state,
                num_candidates=self.num_candidates,
                num_evaluations=self.num_evaluations,
                generation=self.generation,
                population=self.population,
                parents=self.parents,
                cache=self.cache,
                history=self.history,
                best=self.best,
                consecutive_rejections=self.consecutive_rejections,
            ))

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict`. The budget limits may differ (a resume may extend them);
        the settings that shape the trajectory must not."""
        settings = to_json_types(self._settings())
        for name, value in state['settings'].items():
            if settings.get(name) != value:
                raise ValueError(f'cannot resume: {name} was {value!r} in the saved search, now '
                                 f'{settings.get(name)!r}')
        state = copy.deepcopy(state)
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state['rng']
        for name in ('num_candidates', 'num_evaluations', 'generation', 'population', 'parents', 'cache',
                     'history', 'best', 'consecutive_rejections'):
            setattr(self, name, state[name])
        self.last_record = self.history[-1] if self.history else None


def to_json_types(obj):
    """A deep copy of ``obj`` with tuples as lists (and numpy scalars as Python numbers), so that a
    JSON round trip returns an equal object."""
    if isinstance(obj, dict):
        return {k: to_json_types(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_types(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return copy.deepcopy(obj)


def pareto_front(points):
    """Indices of the points no other point beats: lower or equal cost **and** higher or equal score,
    one of them strictly. ``points`` is a sequence of ``(cost, score)``; the result is sorted by cost.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_score = [], -math.inf
    for i in order:
        if points[i][1] > best_score:  # strictly better than everything at lower or equal cost
            front.append(i)
            best_score = points[i][1]
    return front

"""EvolutionSearch with a fake deterministic fitness and constraint (docs/method/sparsevit.md, 3.3)."""
import json
import pickle
from collections import Counter

import pytest

from mmsparse.sparsity.evolution import EvolutionSearch, InfeasibleBudgetError
from mmsparse.sparsity.search_space import SwinRatioSpace

# a MACs-like cost: pruning a gene saves its weight; stage 2 genes each cover 2 of 12 blocks
COST_WEIGHTS = dict(s0=2.0, s1=2.0, s2_1=2.0, s2_2=2.0, s2_3=2.0, s3=2.0)
BUDGET = 9.0  # of a dense 12.0: roughly a third of the random samples fit


def fake_cost(genes):
    return sum(w * (1 - genes[n]) for n, w in COST_WEIGHTS.items())


class Fake:
    """Counting fitness / constraint functions; fitness falls with pruning, differently per gene."""

    def __init__(self, fail_after=None):
        self.fitness_calls = Counter()
        self.constraint_calls = Counter()
        self.fail_after = fail_after

    def fitness(self, genes):
        if self.fail_after is not None and sum(self.fitness_calls.values()) >= self.fail_after:
            raise KeyboardInterrupt('killed')
        self.fitness_calls[json.dumps(genes, sort_keys=True)] += 1
        weights = dict(s0=0.7, s1=3.1, s2_1=1.3, s2_2=1.7, s2_3=1.1, s3=2.3)
        return 50.0 - sum(w * genes[n]**1.5 for n, w in weights.items())

    def constraint(self, genes):
        self.constraint_calls[json.dumps(genes, sort_keys=True)] += 1
        cost = fake_cost(genes)
        return cost <= BUDGET, {'macs': cost}


def make_search(fake, seed=0, **kwargs):
    kwargs.setdefault('max_generations', 4)
    return EvolutionSearch(
        SwinRatioSpace(),
        fake.fitness,
        fake.constraint,
        population=100,
        parents=25,
        seed=seed,
        constraint_desc=f'macs <= {BUDGET}',
        **kwargs)


def test_population_parents_and_operators():
    fake = Fake()
    generations = []
    search = make_search(fake, generation_callback=lambda g, m, p: generations.append((g, m, p)))
    best = search.run()
    assert [g for g, _, _ in generations] == [0, 1, 2, 3] and search.generation == 4
    for _, members, parents in generations:
        # every member is feasible (re-checked from scratch), each full population has 100
        assert len(members) == 100
        assert all(fake_cost(m['genes']) <= BUDGET for m in members)
        # parents: the top 25 by fitness, best first, earlier member first on ties
        expected = sorted(members, key=lambda m: (-m['fitness'], m['index']))[:25]
        assert [p['index'] for p in parents] == [m['index'] for m in expected]
        worst_parent = parents[-1]['fitness']
        assert all(m['fitness'] <= worst_parent for m in members if m not in expected)
    history = search.history
    assert all(r['feasible'] for r in history if r['joined'])
    assert all(r['origin'] == 'init' for r in history if r['generation'] == 0)
    for g in (1, 2, 3):
        recs = [r for r in history if r['generation'] == g]
        joined = [r['origin'] for r in recs if r['joined']]
        assert joined == ['mutation'] * 50 + ['crossover'] * 50
        # all mutation draws (accepted or rejected) come before any crossover draw
        origins = [r['origin'] for r in recs]
        assert origins == sorted(origins, key=lambda o: o != 'mutation')
    # rejection sampling happened and was counted against the budget
    assert any(not r['feasible'] for r in history)
    assert search.num_candidates == len(history)
    # best = the highest-fitness feasible candidate, first one on ties
    feasible = [r for r in history if r['feasible']]
    top = max(r['fitness'] for r in feasible)
    assert best['fitness'] == top and best['feasible']
    assert best['index'] == min(r['index'] for r in feasible if r['fitness'] == top)
    json.dumps(history)  # JSON-safe records


def test_memoisation():
    fake = Fake()
    search = make_search(fake)
    search.run()
    # one fitness and one constraint call per distinct key, none for infeasible ones
    assert max(fake.fitness_calls.values()) == 1 and max(fake.constraint_calls.values()) == 1
    distinct_feasible = {json.dumps(r['genes'], sort_keys=True) for r in search.history if r['feasible']}
    assert set(fake.fitness_calls) == distinct_feasible
    repeats = [r for r in search.history if r['cached']]
    assert len(repeats) > 10  # the fake search converges, so repeats do happen
    assert search.num_evaluations == len(distinct_feasible)
    # default: a feasible repeat joins again (the reference's behaviour)
    assert any(r['joined'] for r in repeats if r['feasible'])


def test_no_rejoin_of_repeats():
    fake = Fake()
    search = make_search(fake, rejoin_repeats=False, max_generations=3)
    search.run()
    assert not any(r['joined'] for r in search.history if r['cached'])
    joined_keys = [json.dumps(r['genes'], sort_keys=True) for r in search.history if r['joined']]
    assert len(joined_keys) == len(set(joined_keys)) == 300


def test_best_never_worsens_and_budget():
    fake = Fake()
    trace = []
    search = make_search(fake, max_generations=None, max_candidates=450)
    search.candidate_callback = lambda r: trace.append(search.best['fitness'] if search.best else None)
    search.run()
    assert search.num_candidates == len(trace) == 450
    values = [v for v in trace if v is not None]
    assert values == sorted(values)
    assert fake_cost(search.best['genes']) <= BUDGET
    with pytest.raises(RuntimeError, match='finished'):
        search.step()


def test_infeasible_first_candidate_is_not_best():
    """The reference marks candidate 0 as best even when it is infeasible; here it never is."""
    for seed in range(100):
        search = make_search(Fake(), seed=seed, max_generations=None, max_candidates=30)
        search.step()
        if not search.history[0]['feasible']:
            break
    assert not search.history[0]['feasible']
    search.run()
    assert search.best['feasible'] and search.best['index'] > 0


def test_same_seed_same_run():
    a, b, c = make_search(Fake()), make_search(Fake()), make_search(Fake(), seed=1)
    a.run(), b.run(), c.run()
    assert a.history == b.history and a.best == b.best
    assert a.history != c.history


@pytest.mark.parametrize('fail_after', [0, 37, 100, 163, 240])
def test_kill_and_resume_equals_uninterrupted(fail_after):
    reference = make_search(Fake())
    reference.run()
    saved = {}
    killed = make_search(Fake(fail_after=fail_after))
    killed.candidate_callback = lambda r: saved.update(blob=pickle.dumps(killed.state_dict()))
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    resumed = make_search(Fake())
    if 'blob' in saved:
        resumed.load_state_dict(pickle.loads(saved['blob']))
        assert resumed.num_candidates == len(resumed.history) > 0
    resumed.run()
    assert resumed.history == reference.history
    assert resumed.best == reference.best and resumed.parents == reference.parents
    assert resumed.rng.bit_generator.state == reference.rng.bit_generator.state


def test_resume_refuses_other_settings():
    search = make_search(Fake(), max_generations=None, max_candidates=5, fingerprint={'macs_max': 9.0})
    search.run()
    state = search.state_dict()
    with pytest.raises(ValueError, match='population'):
        EvolutionSearch(SwinRatioSpace(), None, None, population=50, parents=25).load_state_dict(state)
    with pytest.raises(ValueError, match='fingerprint'):
        make_search(Fake(), fingerprint={'macs_max': 8.0}).load_state_dict(state)
    # the budget may grow on resume
    longer = make_search(Fake(), max_generations=None, max_candidates=10, fingerprint={'macs_max': 9.0})
    longer.load_state_dict(state)
    longer.run()
    assert longer.num_candidates == 10


def test_max_tries_error_names_the_budget():
    search = EvolutionSearch(
        SwinRatioSpace(),
        lambda g: 0.0,
        lambda g: (False, {
            'macs': 40.4
        }),
        population=4,
        parents=2,
        max_tries=20,
        constraint_desc='macs <= 1.0 G')
    with pytest.raises(InfeasibleBudgetError, match=r'macs <= 1\.0 G in 20 consecutive tries'):
        search.run()
    assert search.num_candidates == 20 and search.population == []


def test_argument_errors():
    space = SwinRatioSpace()
    with pytest.raises(ValueError, match='num_mutation'):
        EvolutionSearch(space, None, None, population=10, parents=2, num_mutation=6, num_crossover=6)
    with pytest.raises(ValueError, match='parents'):
        EvolutionSearch(space, None, None, population=10, parents=11)
    with pytest.raises(ValueError, match='mutation_prob'):
        EvolutionSearch(space, None, None, mutation_prob=1.5)
    search = EvolutionSearch(space, lambda g: float('nan'), lambda g: (True, {}), population=2, parents=2)
    with pytest.raises(ValueError, match='finite'):
        search.step()


def test_pareto_front():
    from mmsparse.sparsity.evolution import pareto_front
    pts = [(10, 1.0), (5, 2.0), (7, 3.0), (7, 2.5), (12, 3.0), (3, 0.5), (12, 4.0), (5, 2.0)]
    # (3, .5) cheapest; (5, 2) beats (10, 1); (7, 3) beats (7, 2.5) and (12, 3); (12, 4) best score
    assert pareto_front(pts) == [5, 1, 2, 6]
    assert pareto_front([]) == []


def two_level_fitness(genes):
    """Only two scores, so most candidates tie: stage 1 pruned to at most 0.4 scores 1, else 0."""
    return 1.0 if genes['s1'] <= 0.4 else 0.0


def test_hand_made_tied_candidates_rank_by_score_then_lower_cost():
    search = EvolutionSearch(SwinRatioSpace(), None, None, population=4, parents=2, cost_key='macs')
    a = dict(index=0, fitness=0.5, constraints={'macs': 3.0})
    b = dict(index=1, fitness=0.5, constraints={'macs': 2.0})  # same score as a, cheaper
    c = dict(index=2, fitness=0.4, constraints={'macs': 1.0})  # cheapest, but a lower score
    d = dict(index=3, fitness=0.5, constraints={'macs': 2.0})  # ties b exactly: the earlier b first
    assert sorted([a, b, c, d], key=search.rank) == [b, d, a, c]
    plain = EvolutionSearch(SwinRatioSpace(), None, None, population=4, parents=2)
    assert sorted([a, b, c, d], key=plain.rank) == [a, b, d, c]  # no cost_key: the earlier wins


@pytest.mark.parametrize('cost_key', ['macs', None])
def test_tied_scores_choose_the_cheaper_candidate_as_best_and_as_parents(cost_key):
    fake = Fake()
    generations = []
    search = EvolutionSearch(
        SwinRatioSpace(),
        two_level_fitness,
        fake.constraint,
        population=20,
        parents=5,
        max_generations=3,
        seed=0,
        cost_key=cost_key,
        generation_callback=lambda g, members, parents: generations.append((members, parents)))
    best = search.run()
    feasible = [r for r in search.history if r['feasible']]
    top = [r for r in feasible if r['fitness'] == best['fitness']]
    assert best['fitness'] == max(r['fitness'] for r in feasible) and len(top) > 1  # a real tie
    cheapest = min(r['constraints']['macs'] for r in top)
    if cost_key is None:  # the earlier candidate wins a tie, even when it costs more
        assert best['index'] == min(r['index'] for r in top)
        assert best['constraints']['macs'] > cheapest
    else:  # never dominated: no feasible candidate scores as well at a lower cost
        assert best['constraints']['macs'] == cheapest
        assert best['index'] == min(r['index'] for r in top if r['constraints']['macs'] == cheapest)
        for members, parents in generations:
            ranked = sorted(members, key=lambda m: (-m['fitness'], fake_cost(m['genes']), m['index']))
            assert [p['index'] for p in parents] == [m['index'] for m in ranked[:5]]

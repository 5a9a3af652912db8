"""One contract suite run over every strategy (Optuna's pattern): a new strategy is tested
the day it is registered in STRATEGIES."""

import numpy as np
import pytest

from nas.config import SpaceConfig
from nas.evaluators import LocalPool, evaluate
from nas.objectives import feasible, to_minimise
from nas.pareto import hypervolume
from nas.spaces.elastic import ElasticSpace
from nas.strategies import (AgingEvolutionStrategy, LocalSearchStrategy, MSuNASStrategy, NSGA2Strategy, RandomStrategy,
                            Strategy, ThompsonStrategy)
from nas.spaces.codeepneat import CoDeepNEATSpace
from nas.strategies.codeepneat import CoDeepNEATStrategy
from tests.analytic import AnalyticEvaluator, AnalyticGraphEvaluator, AnalyticMetaEvaluator, AnalyticWannEvaluator

OBJ = ["val_accuracy", "params"]


def make(name, seed=0, constraints=None, prior=None):
    space = ElasticSpace(SpaceConfig())
    c = constraints or {}
    if name == "codeepneat":
        from nas.config import CoDeepNEATConfig

        return CoDeepNEATStrategy(CoDeepNEATSpace(), OBJ, c, seed, CoDeepNEATConfig(module_population=12,
                                                                                   blueprint_population=6), 12)
    if name == "wann":
        from nas.spaces.wann import WANNSpace
        from nas.strategies.wann import WANNStrategy

        return WANNStrategy(WANNSpace(8, 3, init_connection_prob=0.2), ["mean_score", "connections"], c, seed,
                            tournament=4)
    if name == "cma":
        from nas.config import MetaSpaceConfig
        from nas.spaces.meta import LossSpace
        from nas.strategies.cma_es import CMAESStrategy

        return CMAESStrategy(LossSpace(MetaSpaceConfig()), ["val_accuracy"], c, seed, popsize=12, sigma0=0.5)
    if name == "random":
        return RandomStrategy(space, OBJ, c, seed)
    if name == "nsga2":
        return NSGA2Strategy(space, OBJ, c, 12, seed)
    if name == "local_search":
        return LocalSearchStrategy(space, OBJ, c, seed, n_init=8)
    if name == "thompson":
        return ThompsonStrategy(space, OBJ, c, seed, n_init=8)
    if name == "aging":
        return AgingEvolutionStrategy(space, OBJ, c, seed, population=12, tournament=4)
    if name == "aging_elitist":
        return AgingEvolutionStrategy(space, OBJ, c, seed, population=12, tournament=4, elitist=True)
    if name == "reinforce":
        from nas.strategies.reinforce import ReinforceStrategy

        return ReinforceStrategy(space, OBJ, c, seed, lr=0.5)
    return MSuNASStrategy(space, OBJ, c, seed, ["random_forest", "ridge"], 1, 3, 10, 24, prior)


STRATEGIES = ["random", "aging", "aging_elitist", "local_search", "nsga2", "msunas", "thompson", "codeepneat", "wann",
              "cma", "reinforce"]
IMPROVERS = ["aging", "aging_elitist", "local_search", "nsga2", "msunas", "thompson", "codeepneat", "reinforce"]


def analytic(strategy, **kw):
    """The analytic evaluator for the strategy's space (vector or graph genomes)."""
    return {"codeepneat": AnalyticGraphEvaluator, "wann": AnalyticWannEvaluator, "loss": AnalyticMetaEvaluator,
            "activation": AnalyticMetaEvaluator, "augmentation": AnalyticMetaEvaluator}.get(strategy.space.name,
                                                                                            AnalyticEvaluator)(**kw)


def run(strategy, generations=4, n=12, evaluator=None):
    evaluator = evaluator or analytic(strategy)
    pool, history = LocalPool(), []
    for _ in range(generations):
        asked = strategy.ask(n)
        results = pool.evaluate(evaluator, asked)
        strategy.tell(results)
        history.append((asked, results))
    return history


@pytest.mark.parametrize("name", STRATEGIES)
def test_ask_proposes_valid_distinct_unseen_genomes(name):
    s = make(name)
    assert isinstance(s, Strategy)
    seen = set()
    for asked, _ in run(s):
        assert 0 < len(asked) <= 12
        assert len(set(asked)) == len(asked)
        for g in asked:
            s.space.validate(g)
            if hasattr(s.space, "canonical"):
                assert g == s.space.canonical(g.values), "proposals must be canonical"
            assert g not in seen, "a strategy must never re-propose an evaluated architecture"
        seen.update(asked)


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_same_search(name):
    a = [asked for asked, _ in run(make(name, seed=7), 3)]
    b = [asked for asked, _ in run(make(name, seed=7), 3)]
    c = [asked for asked, _ in run(make(name, seed=8), 3)]
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", STRATEGIES)
def test_failed_candidates_are_told_and_not_retried(name):
    s = make(name)
    first = s.ask(12)
    bad = first[:3]
    ev = analytic(s, fail_keys=tuple(g.key() for g in bad))
    results = LocalPool().evaluate(ev, first)
    assert sum(not r.ok for r in results) == 3 and all("injected" in r.error for r in results if not r.ok)
    s.tell(results)
    for _ in range(2):
        nxt = s.ask(12)
        assert not set(nxt) & set(bad)
        s.tell(LocalPool().evaluate(ev, nxt))


@pytest.mark.parametrize("name", IMPROVERS)
def test_search_improves_the_front(name):
    history = run(make(name, seed=1), generations=6)
    ideal, nadir = np.array([-1.0, 0.0]), np.array([-0.5, 130000.0])

    def hv(results):
        return hypervolume(np.array([to_minimise(r.metrics, OBJ) for r in results]), ideal, nadir)

    first = hv(history[0][1])
    final = hv([r for _, rs in history for r in rs])
    assert final > first * 1.02


@pytest.mark.parametrize("name", IMPROVERS)
def test_constraints_steer_towards_feasible_candidates(name):
    """Over four seeds (one seed's five generations of 12 say little), the share of feasible
    proposals grows from the first generation to the last two, and the last generation's is at
    least 0.3 on average: a search that starts with almost nothing feasible finds its way under
    the limit (infeasible candidates are compared by how far they violate it)."""
    # CoDeepNEAT starts minimal (one convolution per network), so its limit must bite from the start
    limit = {"max_params": 4000 if name == "codeepneat" else 15000}
    frac = np.array([[np.mean([feasible(r.metrics, limit) for r in rs])
                      for _, rs in run(make(name, seed=seed, constraints=limit), generations=5)]
                     for seed in (2, 3, 4, 5)])
    assert frac[:, -2:].mean() > frac[:, 0].mean() + 0.2
    assert frac[:, -1].mean() >= 0.3


def test_msunas_uses_prior_samples():
    space = ElasticSpace(SpaceConfig())
    rng = np.random.default_rng(0)
    prior_genomes = [space.sample(rng) for _ in range(20)]
    ev = AnalyticEvaluator()
    prior = [(g, evaluate(ev, g).metrics) for g in prior_genomes]
    s = make("msunas", prior=prior)
    s.tell(LocalPool().evaluate(ev, s.ask(6)))
    s.ask(6)
    assert s.last_fit is not None and set(s.last_fit) == set(OBJ)


def test_nsga2_requires_tell_between_asks():
    s = make("nsga2")
    s.ask(12)
    with pytest.raises(RuntimeError, match="twice"):
        s.ask(12)


def test_search_seed_reseeds_the_strategy_and_nothing_else():
    """``search.seed`` runs another search on the same split, supernet and evaluation seeds: the
    strategy draws as under that run seed, and the run's own seed is untouched."""
    from pathlib import Path

    from nas.config import load_config
    from nas.factory import build_space, build_strategy

    params = Path(__file__).resolve().parents[1] / "params.yaml"

    def first_asks(*sets):
        cfg = load_config(params, ["search.strategy=aging", *sets])
        return cfg, [g.key() for g in build_strategy(cfg, build_space(cfg)).ask(8)]

    cfg0, default = first_asks()
    _, explicit = first_asks("search.seed=0")
    cfg5, own = first_asks("search.seed=5")
    _, run5 = first_asks("seed=5")
    assert default == explicit and own == run5 and own != default
    assert (cfg0.seed, cfg0.search_seed()) == (0, 0) and (cfg5.seed, cfg5.search_seed()) == (0, 5)


def test_elitist_aging_keeps_the_front_as_parents_and_orders_the_whole_pool():
    """AgingEvolutionStrategy(elitist=True): the non-dominated set of everything told stays in the
    selection pool after its members age out of the population (the classic one forgets them), and
    the winner is by rank in the pool, then crowding distance, so within one front the extremes win."""
    from nas.config import load_config
    from nas.factory import build_space, build_strategy
    from nas.genome import EvaluationResult
    from pathlib import Path

    space = ElasticSpace(SpaceConfig())
    rng, genomes = np.random.default_rng(0), []
    while len(genomes) < 8:
        g = space.sample(rng)
        if g not in genomes:
            genomes.append(g)

    def res(g, acc, params):
        return EvaluationResult(g, {"val_accuracy": acc, "params": params})

    wins = {}
    for elitist in (False, True):
        s = AgingEvolutionStrategy(space, OBJ, {}, 0, population=4, tournament=4, elitist=elitist)
        s.tell([res(genomes[0], 0.9, 10.0)] + [res(g, 0.5, 100.0) for g in genomes[1:4]])
        s.tell([res(g, 0.4, 200.0 + i) for i, g in enumerate(genomes[4:8])])  # the best one ages out
        assert genomes[0] not in s.population
        wins[elitist] = sum(s._winner() == genomes[0] for _ in range(200))
        if elitist:
            assert list(s._elite) == [genomes[0]]  # dominated newcomers never enter the elite
    assert wins[False] == 0 and 120 < wins[True] < 200  # drawn with 4 of the pool's 5: about 160

    # one front on a line: the classic tournament picks any member, the elitist one only the two ends
    s = AgingEvolutionStrategy(space, OBJ, {}, 0, population=5, tournament=5, elitist=True)
    s.tell([res(g, 0.5 + 0.1 * i, 100.0 * (i + 1)) for i, g in enumerate(genomes[:5])])
    assert sorted(s._elite, key=genomes.index) == genomes[:5]
    assert {s._winner() for _ in range(50)} == {genomes[0], genomes[4]}
    s.tell([res(genomes[5], 0.95, 50.0)])  # dominates every member: the elite is that genome alone
    assert list(s._elite) == [genomes[5]]

    cfg = load_config(Path(__file__).resolve().parents[1] / "params.yaml",
                      ["search.strategy=aging", "search.aging_elitist=true"])
    assert build_strategy(cfg, build_space(cfg)).elitist is True


def test_feasibility_first_is_debs_constrained_domination():
    """Feasible points keep their objectives; infeasible ones are dominated by every feasible point
    and ordered among themselves by total violation only; no constraints change nothing."""
    from nas.strategies.base import feasibility_first

    F = np.array([[-0.9, 50.0], [-0.5, 10.0], [-0.99, 1.0], [-0.1, 900.0]])
    G = np.array([[0.0, -1.0], [0.0, 0.0], [3.0, 0.0], [1.0, 0.5]])  # the last two violate: 3 and 1.5
    P = feasibility_first(F, G)
    assert np.array_equal(P[:2], F[:2])
    assert (P[3] < P[2]).all() and (P[3] > P[:2].max()).all()  # less violation dominates, whatever F says
    assert np.array_equal(feasibility_first(F[2], G[2]), P[2])  # one point's vectors
    assert np.array_equal(feasibility_first(F, np.zeros((4, 0))), F)

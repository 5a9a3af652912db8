"""The simulated-clock pool: the unchanged runners and strategies on a discrete-event clock."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from nas.config import SpaceConfig
from nas.evaluators import LocalPool
from nas.evaluators.simulated import SimulatedPool, lognormal_durations
from nas.runners import AsyncRunner, GenerationalRunner
from nas.spaces.elastic import ElasticSpace
from nas.strategies import AgingEvolutionStrategy
from tests.analytic import AnalyticEvaluator

OBJ = ["val_accuracy", "params"]


def strategy(seed=0):
    return AgingEvolutionStrategy(ElasticSpace(SpaceConfig()), OBJ, {}, seed, population=8, tournament=3)


def run(pool, mode, seed=0, budget=40):
    s = strategy(seed)
    if mode == "generational":
        runner = GenerationalRunner(s, pool, AnalyticEvaluator(), 8, budget // 8 - 1, None)
    else:
        runner = AsyncRunner(s, pool, AnalyticEvaluator(), budget, 8, 2, None)
    return runner.run(), s


@pytest.mark.parametrize("mode", ["generational", "async"])
def test_equal_durations_give_the_local_pools_archive(mode):
    local, s_local = run(LocalPool(), mode)
    sim, s_sim = run(SimulatedPool(8, lambda g: 10.0), mode)
    assert [r.genome for r in sim] == [r.genome for r in local]
    assert list(s_sim.archive.results) == list(s_local.archive.results)
    assert [r.metrics for r in sim] == [r.metrics for r in local]


@pytest.mark.parametrize("mode", ["generational", "async"])
def test_the_clock_never_runs_backwards_and_each_candidate_is_accounted_once(mode):
    space = ElasticSpace(SpaceConfig())
    dur = lognormal_durations(lambda g: 1.0 + len(space.decode(g)), sigma=1.0, seed=3, mean=5.0)
    pool = SimulatedPool(4, dur, failure_rate=0.2, restart_s=3.0, seed=1)
    results, s = run(pool, mode, budget=48)
    finish = [r.extra["sim_finish"] for r in results]
    # generational results are told in proposal order; within the run, time only moves forward
    if mode == "async":
        assert finish == sorted(finish)
    assert all(r.extra["sim_start"] <= r.extra["sim_finish"] for r in results)
    # the seconds a result reports are the simulated seconds it held its worker (its last attempt)
    assert all(r.eval_seconds == pytest.approx(r.extra["sim_finish"] - r.extra["sim_start"]) for r in results)
    assert len({r.genome for r in results}) == len(results) == 48 == pool.completed
    assert pool.retries > 0 and any(r.extra["sim_attempts"] > 1 for r in results)  # failed workers: resubmitted
    # failed attempts (and cancelled work) are busy time that gave no result: the rest is the results' seconds
    assert pool.wasted_seconds > 0
    assert pool.busy_seconds - pool.wasted_seconds == pytest.approx(sum(r.eval_seconds for r in results))
    by_worker = defaultdict(list)
    for r in results:
        by_worker[r.extra["sim_worker"]].append((r.extra["sim_start"], r.extra["sim_finish"]))
    for spans in by_worker.values():  # a worker runs one candidate at a time
        spans.sort()
        assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:]))
    assert set(by_worker) <= set(range(4)) and 0 < pool.utilisation <= 1
    assert pool.clock == pytest.approx(max(finish))


def test_async_keeps_workers_busier_than_generations_when_durations_vary():
    space = ElasticSpace(SpaceConfig())
    dur = lognormal_durations(lambda g: 1.0 + len(space.decode(g)), sigma=1.0, seed=0)
    gen_pool, async_pool = SimulatedPool(8, dur), SimulatedPool(8, dur)
    run(gen_pool, "generational", budget=64)
    run(async_pool, "async", budget=64)
    assert async_pool.utilisation > 0.9 > gen_pool.utilisation


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="workers"):
        SimulatedPool(0, lambda g: 1.0)
    with pytest.raises(ValueError, match="failure_rate"):
        SimulatedPool(2, lambda g: 1.0, failure_rate=1.0)
    pool = SimulatedPool(2, lambda g: float("nan"))
    with pytest.raises(ValueError, match="duration"):
        pool.evaluate(AnalyticEvaluator(), [ElasticSpace(SpaceConfig()).sample(np.random.default_rng(0))])


def test_duration_weighted_tournaments_favour_slow_members_and_forget_the_dead():
    """AgingEvolutionStrategy(duration_weight=a) draws tournament members with probability
    proportional to their evaluation seconds ** a (the evaluation-time bias counter); 0 draws
    uniformly. Members of equal fitness all tie, so the winner is a random member of the
    tournament and its frequency shows the draw."""
    from nas.genome import EvaluationResult

    space = ElasticSpace(SpaceConfig())
    genomes = []
    rng = np.random.default_rng(0)
    while len(genomes) < 21:
        g = space.sample(rng)
        if g not in genomes:
            genomes.append(g)
    wins = {}
    for a in (0.0, 1.0):
        s = AgingEvolutionStrategy(space, OBJ, {}, 0, population=20, tournament=3, duration_weight=a)
        s.tell([EvaluationResult(g, {"val_accuracy": 0.5, "params": 100.0}, eval_seconds=1000.0 if i == 0 else 1.0)
                for i, g in enumerate(genomes[:20])])
        wins[a] = sum(s._winner() == genomes[0] for _ in range(300))
        if a:
            assert set(s._seconds) == set(genomes[:20])
            s.tell([EvaluationResult(genomes[20], {"val_accuracy": 0.5, "params": 100.0}, eval_seconds=1.0)])
            assert genomes[0] not in s.population and genomes[0] not in s._seconds  # the oldest died
    assert wins[1.0] > 70 > 40 > wins[0.0]  # about 300/3 against about 300/20
    with pytest.raises(ValueError, match="duration_weight"):
        AgingEvolutionStrategy(space, OBJ, {}, 0, duration_weight=-1.0)


def test_draining_at_the_budget_lets_workers_go_as_they_fall_idle():
    """drain="finish" tells the pool that nothing more comes (release_idle): each worker leaves when
    it finishes with nothing waiting, so the worker time held is the release or its last finish,
    whichever is later. The same run is simulated; only what counts as held changes. A new queue
    brings every worker back."""
    space = ElasticSpace(SpaceConfig())
    dur = lognormal_durations(lambda g: 1.0 + len(space.decode(g)), sigma=1.0, seed=2, mean=10.0)
    pools, runs = {}, {}
    for drain in ("cancel", "finish"):
        pool = pools[drain] = SimulatedPool(8, dur)
        runs[drain] = AsyncRunner(strategy(), pool, AnalyticEvaluator(), 48, 8, 2, None, drain=drain).run()
        assert len(runs[drain]) == 48
    cancel, finish = pools["cancel"], pools["finish"]
    assert cancel.held_seconds == pytest.approx(8 * cancel.clock)  # nothing released
    assert cancel.utilisation_held == pytest.approx(cancel.utilisation)
    # cancelled work was busy time that gave nothing: the completed evaluations' seconds are the rest
    assert cancel.wasted_seconds > 0 and finish.wasted_seconds == 0
    for drain, pool in pools.items():
        assert pool.busy_seconds - pool.wasted_seconds == pytest.approx(sum(r.eval_seconds for r in runs[drain]))
    assert cancel.utilisation_useful < cancel.utilisation_held
    results = runs["finish"]
    last, released = defaultdict(float), max(r.extra["sim_start"] for r in results)  # the last ones start at once
    for r in results:
        last[r.extra["sim_worker"]] = max(last[r.extra["sim_worker"]], r.extra["sim_finish"])
    assert finish.held_seconds == pytest.approx(sum(max(released, last[w]) for w in range(8)))
    assert finish.held_seconds < 8 * finish.clock and finish.utilisation < 0.9 < finish.utilisation_held <= 1
    away = 8 * finish.clock - finish.held_seconds
    again = finish.evaluate(AnalyticEvaluator(), strategy(1).ask(16))  # new work: all eight workers are back
    assert {r.extra["sim_worker"] for r in again} == set(range(8)) and not finish.releasing
    assert 8 * finish.clock - finish.held_seconds == pytest.approx(away)


def test_a_generational_search_lets_workers_go_during_its_last_generation_only():
    space = ElasticSpace(SpaceConfig())
    dur = lognormal_durations(lambda g: 1.0 + len(space.decode(g)), sigma=1.0, seed=2, mean=10.0)
    pool = SimulatedPool(8, dur)
    results, _ = run(pool, "generational", budget=48)
    last_gen = max(r.extra["sim_start"] for r in results)  # its members all start when it is submitted
    last = defaultdict(float)
    for r in results:
        last[r.extra["sim_worker"]] = max(last[r.extra["sim_worker"]], r.extra["sim_finish"])
    assert pool.held_seconds == pytest.approx(sum(max(last_gen, last[w]) for w in range(8)))
    assert pool.utilisation < pool.utilisation_held < 1

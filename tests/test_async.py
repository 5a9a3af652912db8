"""Asynchronous evaluation: K candidates in flight on a real Dask LocalCluster, the strategy
updated whenever M return (tabular evaluator with simulated, heterogeneous durations)."""

import json

import numpy as np
import pandas as pd
import pytest

from nas.config import ConfigError, load_config
from nas.evaluators.dask import DaskPool
from nas.evaluators.table import TableEvaluator
from nas.runners import AsyncRunner
from nas.spaces.nb201 import NB201Space
from nas.strategies import (AgingEvolutionStrategy, LocalSearchStrategy, MSuNASStrategy, NSGA2Strategy,
                            RandomStrategy, ThompsonStrategy)
from tests.conftest import ROOT, synthetic_table_sets

OBJ = ["val_accuracy", "lat_ms"]


@pytest.fixture(scope="module")
def pool():
    with DaskPool(workers=3) as p:
        yield p


def _evaluator(table):
    # 5-30 ms per candidate, proportional to its latency column: heterogeneous durations
    return TableEvaluator(str(table), "cheap_acc", "final_acc", ("lat_ms",), arch_column="cell",
                          sim_seconds=0.004, sim_seconds_column="lat_ms", sim_scale=0.004)


def _strategy(name, seed=0):
    space = NB201Space()
    return {"random": lambda: RandomStrategy(space, OBJ, {}, seed),
            "aging": lambda: AgingEvolutionStrategy(space, OBJ, {}, seed, population=8, tournament=3),
            "aging_elitist": lambda: AgingEvolutionStrategy(space, OBJ, {}, seed, population=8, tournament=3,
                                                            elitist=True),
            "local_search": lambda: LocalSearchStrategy(space, OBJ, {}, seed, n_init=6),
            "thompson": lambda: ThompsonStrategy(space, OBJ, {}, seed),
            "nsga2": lambda: NSGA2Strategy(space, OBJ, {}, 8, seed, steady_state=True),
            "msunas": lambda: MSuNASStrategy(space, OBJ, {}, seed, ["random_forest"], 1, 3, inner_generations=5,
                                             inner_population=20, refit_every=6)}[name]()


@pytest.mark.parametrize("name", ["random", "aging", "aging_elitist", "local_search", "thompson", "nsga2", "msunas"])
def test_async_search_completes_the_budget_with_distinct_recorded_results(synthetic, pool, tmp_path, name):
    runner = AsyncRunner(_strategy(name), pool, _evaluator(synthetic), budget=30, in_flight=6, batch=2,
                         out_dir=tmp_path)
    results = runner.run()
    assert len(results) == 30 and len({r.genome for r in results}) == 30
    assert all(r.ok for r in results)
    for r in results:
        assert r.extra["submitted_at"] <= r.started_at <= r.finished_at
        assert r.worker.startswith("tcp://127.0.0.1:")
    gens = [r.extra["generation"] for r in results]
    assert gens == sorted(gens) and gens[-1] == len(runner.generation_log) - 1
    assert all(g["evaluated"] <= 2 for g in runner.generation_log)
    # K stay in flight, so the budget ends with some still running; they are cancelled and reported
    assert 0 < len(runner.cancelled) <= 6 and not set(runner.cancelled) & {r.genome for r in results}
    assert runner.max_in_flight == 6, "never more than K in flight, and K kept busy"
    assert runner.submitted == len(results) + len(runner.cancelled), "every submission accounted for once"
    snaps = sorted((tmp_path / "populations").glob("gen_*.parquet"))
    assert len(snaps) == len(runner.generation_log)
    df = pd.concat([pd.read_parquet(f) for f in snaps])
    assert len(df) == 30 and {"submitted_at", "started_at", "finished_at", "worker", "generation"} <= set(df.columns)
    assert len(set(df.worker)) >= 2, "work must spread over the workers"


def test_await_keeps_the_late_results(synthetic, pool, tmp_path):
    runner = AsyncRunner(_strategy("aging"), pool, _evaluator(synthetic), budget=20, in_flight=5, batch=1,
                         out_dir=tmp_path, drain="await")
    results = runner.run()
    late = [r for r in results if r.extra.get("late")]
    assert not runner.cancelled and len(late) >= 1 and len(results) == 20 + len(late)
    assert len({r.genome for r in results}) == len(results)


def test_finish_submits_no_more_than_the_budget_and_cancels_nothing(synthetic, pool, tmp_path):
    """drain="finish": K stay in flight until the budget is submitted, then the last ones run to the
    end; nothing is cancelled and nothing beyond the budget is asked for or evaluated."""
    strategy = _strategy("aging")
    asked = []
    ask = strategy.ask
    strategy.ask = lambda n: asked.extend(out := ask(n)) or out
    runner = AsyncRunner(strategy, pool, _evaluator(synthetic), budget=20, in_flight=5, batch=1,
                         out_dir=tmp_path, drain="finish")
    results = runner.run()
    assert len(results) == 20 and len({r.genome for r in results}) == 20
    assert not runner.cancelled and runner.submitted == 20 and len(asked) == 20
    assert runner.max_in_flight == 5 and not any(r.extra.get("late") for r in results)


def test_same_seed_same_archive_when_durations_are_equal(synthetic, pool, tmp_path):
    """With one candidate in flight the order is fixed, so a seed reproduces the run exactly."""
    ev = TableEvaluator(str(synthetic), "cheap_acc", "final_acc", ("lat_ms",), arch_column="cell")
    runs = [AsyncRunner(_strategy("aging", 3), pool, ev, budget=15, in_flight=1, batch=1,
                        out_dir=tmp_path / str(i)).run() for i in range(2)]
    assert [r.genome for r in runs[0]] == [r.genome for r in runs[1]]
    assert [r.seed for r in runs[0]] == [r.seed for r in runs[1]]


def test_bad_queue_settings_are_rejected(synthetic, pool, tmp_path):
    with pytest.raises(ValueError, match="batch"):
        AsyncRunner(_strategy("random"), pool, _evaluator(synthetic), 10, in_flight=2, batch=3, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="search.async"):
        load_config(ROOT / "params.yaml", ["search.mode=async", "search.strategy=aging", "search.async.in_flight=2",
                                            "search.async.batch=4"])
    with pytest.raises(ConfigError, match="search.async.drain"):
        load_config(ROOT / "params.yaml", ["search.mode=async", "search.async.drain=later"])


def test_search_stage_in_async_mode_feeds_selection(synthetic, tmp_path, monkeypatch):
    from nas import stages

    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "params.yaml", [
        *synthetic_table_sets(synthetic), "search.strategy=thompson", "search.mode=async",
        "search.async.in_flight=4", "search.async.batch=2", "search.async.budget=24", "evaluation.workers=2",
        "evaluation.table.sim_seconds=0.005"])
    summary = stages.run_search(cfg)
    assert summary["mode"] == "async" and summary["n_evaluated"] == 24
    assert summary["async"]["budget"] == 24 and summary["async"]["cancelled"] >= 1
    assert 0 < summary["worker_utilization"] <= 1.0 + 1e-6
    assert json.loads((tmp_path / "artifacts/search/summary.json").read_text())["mode"] == "async"
    all_df, front = stages.pareto_front(cfg)
    assert len(all_df) == 24 and len(front) >= 1
    hv = pd.read_csv(tmp_path / "reports/hypervolume.csv")
    assert len(hv) == 24 and np.all(np.diff(hv.hypervolume) >= -1e-12)


def test_search_stage_on_an_adaptive_cluster_counts_the_workers_it_grew_to(synthetic, tmp_path, monkeypatch):
    """evaluation.adaptive starts the LocalCluster at its minimum (1) and grows it as candidates wait
    (Dask's target duration lowered so that it grows for evaluations of half a second): the summary's
    workers and utilisation count the workers that evaluated, not the one there at the start."""
    import dask

    from nas import stages

    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "params.yaml", [
        *synthetic_table_sets(synthetic), "search.strategy=random", "search.mode=async",
        "search.async.in_flight=3", "search.async.batch=1", "search.async.budget=12",
        "evaluation.adaptive.minimum=1", "evaluation.adaptive.maximum=3", "evaluation.table.sim_seconds=0.5"])
    with dask.config.set({"distributed.adaptive.target-duration": "0.1s"}):
        summary = stages.run_search(cfg)
    from nas.runners import read_populations

    used = read_populations(tmp_path / "artifacts/search/populations").worker.nunique()
    assert used >= 2 and summary["workers"] >= used
    assert 0 < summary["worker_utilization"] <= 1.0 + 1e-6


def test_m_equal_to_k_behaves_like_generational(synthetic, pool, tmp_path):
    from nas.runners import GenerationalRunner

    ev = _evaluator(synthetic)
    gen = GenerationalRunner(_strategy("thompson", 5), pool, ev, population=6, generations=3,
                             out_dir=tmp_path / "g").run()
    asy = AsyncRunner(_strategy("thompson", 5), pool, ev, budget=24, in_flight=6, batch=6,
                      out_dir=tmp_path / "a")
    res = asy.run()
    assert [sorted(r.genome.values for r in gen[i:i + 6]) for i in range(0, 24, 6)] == \
        [sorted(r.genome.values for r in res[i:i + 6]) for i in range(0, 24, 6)]
    assert [r.extra["generation"] for r in res] == [i // 6 for i in range(24)]


def test_steady_state_nsga2_keeps_the_elite_of_everything_evaluated(synthetic, pool, tmp_path):
    from nas.pareto import non_dominated

    s = _strategy("nsga2", 4)
    results = AsyncRunner(s, pool, _evaluator(synthetic), budget=48, in_flight=6, batch=2, out_dir=tmp_path).run()
    F = np.array([s.archive.F(r.genome) for r in results])
    front = {results[i].genome.values for i in non_dominated(F)}
    pop = {tuple(int(v) for v in x) for x in s.algorithm.pop.get("X")}
    assert len(pop) == 8
    # rank-and-crowding survival over everything told: the first front survives whole, or fills the population
    assert front <= pop if len(front) <= 8 else pop <= front


def test_msunas_refits_on_its_cadence(synthetic, pool, tmp_path):
    s = _strategy("msunas", 2)
    fits = []
    original = s._propose

    def counting(n, taken):
        fits.append(len(s.archive))
        return original(n, taken)

    s._propose = counting
    AsyncRunner(s, pool, _evaluator(synthetic), budget=30, in_flight=4, batch=2, out_dir=tmp_path).run()
    assert len(fits) >= 3 and all(b > a for a, b in zip(fits, fits[1:])), "refitted as results arrive"
    assert len(fits) < 14, "but not on every one of the 15 batches"


def test_async_runs_on_the_local_pool_through_the_same_contract(synthetic, tmp_path):
    """The async runner uses only the pool contract (submit, results as they complete, cancel),
    so the in-process pool runs it too (issue 17); on it the order is fixed, so a seed
    reproduces the run exactly."""
    from nas.evaluators import LocalPool

    def run(out):
        runner = AsyncRunner(_strategy("aging"), LocalPool(), _evaluator(synthetic), budget=20, in_flight=4,
                             batch=2, out_dir=out)
        return runner, runner.run()

    runner, results = run(tmp_path / "a")
    assert len(results) == 20 and len({r.genome for r in results}) == 20 and all(r.ok for r in results)
    assert runner.max_in_flight == 4 and 0 < len(runner.cancelled) <= 4
    assert runner.submitted == len(results) + len(runner.cancelled)
    assert all(g["evaluated"] <= 2 for g in runner.generation_log)
    _, again = run(tmp_path / "b")
    assert [r.genome for r in again] == [r.genome for r in results]


def test_a_candidate_asked_again_after_a_resume_is_taken_from_the_journal(synthetic, tmp_path):
    """A resumed strategy replays to its checkpoint and then proposes again what it proposed
    before the crash; a candidate that had finished then (its result is in the journal) is not
    evaluated again (seen in a fresh-clone run: one genome evaluated twice). The journal's
    contents are given directly here, as `_begin` reads them on a resume."""
    import dataclasses

    from nas.evaluators import LocalPool
    from nas.evaluators.base import evaluate

    ev = _evaluator(synthetic)
    first = _strategy("random").ask(1)[0]  # what the strategy will propose first
    done = dataclasses.replace(evaluate(ev, first), eval_seconds=123.0)  # an earlier process's result

    class Counting(LocalPool):
        seen: list = []

        def queue(self):
            q = super().queue()
            submit = q.submit
            q.submit = lambda evaluator, g: (Counting.seen.append(g), submit(evaluator, g))[1]
            return q

    runner = AsyncRunner(_strategy("random"), Counting(), ev, budget=6, in_flight=3, batch=1, out_dir=tmp_path)
    runner._journaled = {first.key(): done}
    results = runner.run()
    assert first not in Counting.seen and runner.reused == 1 and len(results) == 6
    assert [r for r in results if r.genome == first] == [done] and len(runner.evaluated_now) == 5

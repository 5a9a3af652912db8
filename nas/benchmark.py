"""Tabular benchmark: our strategies and outside peers on the same table, budgets and seeds.

Each (strategy, seed) job runs once up to the largest budget, recording the distinct
architectures in the order they were evaluated; every budget is then scored on the prefix
of that order (an anytime curve), so budgets of one seed share one run. The budget counts
distinct evaluations: a repeated proposal is answered from the run's cache and not counted.

Scores per (strategy, seed, budget):
- ``best_report``: the report-column value of the incumbent, the evaluated architecture with
  the best signal-column value;
- ``hv_fraction`` (only with cost columns): hypervolume of the evaluated set in the space
  (report error = (100 - report) / 100, each cost / its column maximum; all minimised;
  reference point (1, ..., 1)) divided by the hypervolume of the whole table's front.

Peers use their libraries directly: ``random`` (uniform without replacement),
``pymoo-nsga2`` (pymoo's NSGA2 with its defaults on the integer encoding),
``optuna-tpe`` and ``optuna-nsga2`` (Optuna's samplers over six categorical edges).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nas.evaluators.base import evaluate
from nas.evaluators.table import Table, TableEvaluator
from nas.genome import Genome

OURS = ("evonas-random", "evonas-aging", "evonas-aging-sep", "evonas-aging-elitist", "evonas-nsga2", "evonas-msunas",
        "evonas-local", "evonas-thompson")
PEERS = ("random", "pymoo-nsga2", "optuna-tpe", "optuna-nsga2")
ALL = OURS + PEERS
MAX_PEER_REPEATS = 500
MAX_PEER_TRIALS_PER_EVAL = 10
"""An Optuna peer is stopped (its later budgets scored on what it found) after proposing only
already-evaluated architectures ``MAX_PEER_REPEATS`` times in a row, or after
``MAX_PEER_TRIALS_PER_EVAL x budget`` trials in all: a converged multi-objective TPE otherwise
spends hours re-proposing known cells (each answered from the cache for free) while every
trial costs more as the study grows."""


@dataclass(frozen=True)
class BenchmarkSpec:
    table: str
    signal_column: str
    report_column: str
    cost_columns: tuple[str, ...] = ()
    arch_column: str = "arch_str"

    def evaluator(self) -> TableEvaluator:
        return TableEvaluator(self.table, self.signal_column, self.report_column, self.cost_columns,
                              self.arch_column)

    @property
    def objectives(self) -> list[str]:
        return ["val_accuracy", *self.cost_columns]


class _Budgeted:
    """Answers lookups and records the order of distinct evaluations; ``done`` once ``budget``
    distinct rows were seen. Scoring reads prefixes of ``order``, so a strategy that finishes
    its last batch past the budget is scored fairly."""

    def __init__(self, spec: BenchmarkSpec, budget: int):
        self.ev = spec.evaluator()
        self.table: Table = self.ev.table()
        self.spec, self.budget = spec, budget
        self.order: list[int] = []
        self.times: list[float] = []
        self._seen: set[int] = set()
        self.t0 = time.perf_counter()

    @property
    def done(self) -> bool:
        return len(self.order) >= self.budget

    def row(self, g: Genome) -> int:
        i = self.table.index[g]
        if i not in self._seen:
            self._seen.add(i)
            self.order.append(i)
            self.times.append(time.perf_counter() - self.t0)
        return i

    def objectives(self, i: int) -> list[float]:
        """Minimisation vector: -signal, then the costs."""
        return [-float(self.table.signal[i])] + [float(_cost_column(self.table, self.spec, c)[i])
                                                 for c in self.spec.cost_columns]


# ----------------------------------------------------------------------------- our strategies


def _ours(name: str, spec: BenchmarkSpec, seed: int, budget: int) -> _Budgeted:
    from nas.spaces.nb201 import NB201Space
    from nas.strategies import (AgingEvolutionStrategy, LocalSearchStrategy, MSuNASStrategy, NSGA2Strategy,
                                RandomStrategy, ThompsonStrategy)

    space = NB201Space()
    obj = spec.objectives
    if name == "evonas-random":
        strategy, batch = RandomStrategy(space, obj, {}, seed), 10
    elif name == "evonas-aging":
        strategy, batch = AgingEvolutionStrategy(space, obj, {}, seed, population=20, tournament=5), 1
    elif name == "evonas-aging-elitist":  # NSGA-II's selection order over the population and the front
        strategy, batch = AgingEvolutionStrategy(space, obj, {}, seed, population=20, tournament=5, elitist=True), 1
    elif name == "evonas-aging-sep":  # half the children by Shortest-Edit-Path crossover
        strategy = AgingEvolutionStrategy(NB201Space(crossover="sep"), obj, {}, seed, population=20, tournament=5,
                                          crossover_prob=0.5)
        batch = 1
    elif name == "evonas-nsga2":
        strategy, batch = NSGA2Strategy(space, obj, {}, 20, seed), 20
    elif name == "evonas-local":
        strategy, batch = LocalSearchStrategy(space, obj, {}, seed, n_init=10), 1
    elif name == "evonas-thompson":
        strategy, batch = ThompsonStrategy(space, obj, {}, seed), 1
    elif name == "evonas-msunas":
        strategy, batch = MSuNASStrategy(space, obj, {}, seed, ["random_forest"], 1, 3,
                                         inner_generations=10, inner_population=40), 10
    else:
        raise ValueError(f"unknown strategy {name!r}")
    run = _Budgeted(spec, budget)
    while not run.done:
        asked = strategy.ask(batch)
        if not asked:  # the strategy has nothing new to propose
            strategy.tell([])
            break
        for g in asked:
            run.row(g)
        strategy.tell([evaluate(run.ev, g) for g in asked])
    return run


# ----------------------------------------------------------------------------- peers


def _peer_random(spec: BenchmarkSpec, seed: int, budget: int) -> _Budgeted:
    run = _Budgeted(spec, budget)
    for i in np.random.default_rng(seed).permutation(len(run.table))[:budget]:
        run.row(run.table.genomes[int(i)])
    return run


def _peer_pymoo(spec: BenchmarkSpec, seed: int, budget: int) -> _Budgeted:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    run = _Budgeted(spec, budget)
    n_obj = 1 + len(spec.cost_columns)
    problem = Problem(n_var=6, n_obj=n_obj, xl=0, xu=4, vtype=int)
    algo = NSGA2(sampling=IntegerRandomSampling(), crossover=SBX(vtype=float, repair=RoundingRepair()),
                 mutation=PM(vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)
    algo.setup(problem, termination=("n_gen", 10**6), seed=seed, verbose=False)
    while not run.done:
        pop = algo.ask()
        F = []
        for x in pop.get("X"):
            g = Genome(tuple(int(v) for v in np.clip(np.rint(x), 0, 4)), "nb201")
            F.append(run.objectives(run.row(g)))
            if run.done:
                break
        if len(F) < len(pop):
            break
        pop.set("F", np.array(F))
        algo.tell(infills=pop)
    return run


def _peer_optuna(kind: str, spec: BenchmarkSpec, seed: int, budget: int) -> _Budgeted:
    import optuna

    from nas.spaces.nb201 import OPS

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = _Budgeted(spec, budget)
    directions = ["minimize"] * (1 + len(spec.cost_columns))
    sampler = optuna.samplers.TPESampler(seed=seed) if kind == "tpe" else optuna.samplers.NSGAIISampler(seed=seed)
    study = optuna.create_study(directions=directions, sampler=sampler)
    repeats = 0  # consecutive proposals of already-evaluated architectures
    for _ in range(budget * MAX_PEER_TRIALS_PER_EVAL):
        if run.done or repeats >= MAX_PEER_REPEATS:
            break
        trial = study.ask()
        g = Genome(tuple(OPS.index(trial.suggest_categorical(f"edge{k}", list(OPS))) for k in range(6)), "nb201")
        before = len(run.order)
        values = run.objectives(run.row(g))
        repeats = 0 if len(run.order) > before else repeats + 1
        study.tell(trial, values if len(values) > 1 else values[0])
    return run


def run_job(strategy: str, spec: BenchmarkSpec, seed: int, budget: int) -> dict:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one process per core: nested BLAS threads would only contend
        return _run_job(strategy, spec, seed, budget)


def _run_job(strategy: str, spec: BenchmarkSpec, seed: int, budget: int) -> dict:
    t0 = time.perf_counter()
    if strategy in OURS:
        run = _ours(strategy, spec, seed, budget)
    elif strategy == "random":
        run = _peer_random(spec, seed, budget)
    elif strategy == "pymoo-nsga2":
        run = _peer_pymoo(spec, seed, budget)
    elif strategy in ("optuna-tpe", "optuna-nsga2"):
        run = _peer_optuna(strategy.split("-")[1], spec, seed, budget)
    else:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(ALL)}")
    return {"strategy": strategy, "seed": seed, "order": run.order, "times": run.times,
            "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- scoring


def _hv_points(table: Table, spec: BenchmarkSpec, rows: np.ndarray) -> np.ndarray:
    err = (100.0 - table.report[rows]) / 100.0
    cols = [err]
    for c in spec.cost_columns:
        full = _cost_column(table, spec, c)
        cols.append(full[rows] / full.max())
    return np.column_stack(cols)


_COST_CACHE: dict = {}


def _cost_column(table: Table, spec: BenchmarkSpec, c: str) -> np.ndarray:
    if c in table.costs:
        return table.costs[c]
    key = (spec, c)
    if key not in _COST_CACHE:
        ev = spec.evaluator()
        _COST_CACHE[key] = np.array([ev.metrics(g, 0)[c] for g in table.genomes])
    return _COST_CACHE[key]


def hv_fraction(table: Table, spec: BenchmarkSpec, rows, reference_hv: float) -> float:
    from pymoo.indicators.hv import HV

    pts = _hv_points(table, spec, np.asarray(rows, dtype=int))
    return float(HV(ref_point=np.ones(pts.shape[1]))(pts)) / reference_hv


def table_hypervolume(table: Table, spec: BenchmarkSpec) -> float:
    from pymoo.indicators.hv import HV

    from nas.pareto import non_dominated

    pts = _hv_points(table, spec, np.arange(len(table)))
    return float(HV(ref_point=np.ones(pts.shape[1]))(pts[non_dominated(pts)]))


def score(job: dict, table: Table, spec: BenchmarkSpec, budgets: list[int], reference_hv: float | None) -> list[dict]:
    rows = []
    order = np.array(job["order"], dtype=int)
    for b in budgets:
        prefix = order[:b]
        if len(prefix) == 0:
            continue
        inc = prefix[int(np.argmax(table.signal[prefix]))]
        rows.append({
            "strategy": job["strategy"], "seed": job["seed"], "budget": b, "evaluated": len(prefix),
            "best_report": float(table.report[inc]),
            "hv_fraction": hv_fraction(table, spec, prefix, reference_hv) if reference_hv else np.nan,
            "seconds": float(job["times"][min(b, len(prefix)) - 1]) if job["times"] else job["seconds"],
        })
    return rows


def run_benchmark(spec: BenchmarkSpec, strategies: list[str], budgets: list[int], seeds: int,
                  workers: int | None = None, progress=None, first_seed: int = 0) -> pd.DataFrame:
    """Run every (strategy, seed) job in a process pool and score every budget; seeds are
    ``first_seed .. first_seed + seeds - 1``."""
    table = spec.evaluator().table()
    reference = table_hypervolume(table, spec) if spec.cost_columns else None
    max_budget = max(budgets)
    jobs = [(s, seed) for s in strategies for seed in range(first_seed, first_seed + seeds)]
    workers = workers or os.cpu_count() or 1
    rows: list[dict] = []
    if workers == 1:
        for s, seed in jobs:
            rows += score(run_job(s, spec, seed, max_budget), table, spec, budgets, reference)
            if progress:
                progress(s, seed)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futs = {pool.submit(run_job, s, spec, seed, max_budget): (s, seed) for s, seed in jobs}
            for fut in as_completed(futs):
                rows += score(fut.result(), table, spec, budgets, reference)
                if progress:
                    progress(*futs[fut])
    df = pd.DataFrame(rows)
    order = {s: i for i, s in enumerate(strategies)}
    return df.sort_values(["strategy", "seed", "budget"], key=lambda c: c.map(order) if c.name == "strategy" else c) \
        .reset_index(drop=True)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    agg = {"best_report": ["mean", "std"], "seconds": ["mean"]}
    if df["hv_fraction"].notna().any():
        agg["hv_fraction"] = ["mean", "std"]
    out = df.groupby(["strategy", "budget"], sort=False).agg(agg)
    out.columns = ["_".join(c) for c in out.columns]
    return out.reset_index()

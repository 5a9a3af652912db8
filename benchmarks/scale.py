"""Generational against asynchronous evaluation from 8 to 1,000 workers, on a simulated clock.

Nobody can rent 1,000 workers to find out how the two modes behave there, so this runs the
real ``GenerationalRunner`` and ``AsyncRunner`` with the real strategies on a
``SimulatedPool`` (``nas/evaluators/simulated.py``): a discrete-event simulation in which each
candidate holds a worker for a simulated duration and the clock jumps between events. Fitness
comes from the NAS-Bench-201 table (``--table``; the 12-epoch validation accuracy the search
sees, and a cost column as second objective); a candidate's duration is its cost column value
over the column's mean, times ``--mean-seconds``, times log-normal noise of log-std
``--sigma`` (1: heavy-tailed), drawn per candidate from the seed; workers fail at
``--failure-rate`` per evaluation and restart after ``--restart-s``.

For every W in ``--workers``, strategy in ``--strategies`` (``aging``, ``nsga2``, ``thompson``: the
model-based Thompson sampling of ``nas/strategies/thompson.py``, ``random``) and seed:
- generational: population W, 20 W evaluations (``--budget-per-worker``);
- async: K = W in flight (``--k``), the strategy told every M = W/32 results (``--m``), run to
  1.5 times the generational budget, so that "never reached the target within 1.5x the
  budget" can be seen.
Reported: simulated wall time, utilisation (busy worker time / (W x wall)), the utilisation of the
worker time held (``utilisation_held``: workers are released as they fall idle once nothing more will
be submitted, in a generational run's last generation and while an async run drains at its budget with
``--drain finish``; what a cluster of rented machines that scales down costs) and the part of it spent
on evaluations that completed (``utilisation_useful``: cancelled work and failed attempts left out),
evaluations per
simulated second, the hypervolume of the evaluated set (validation error and cost, normalised)
at generational's budget, time to generational's final hypervolume and the speed-up
(generational's wall time over async's time to reach it; 0 when async never does; also to
99.5 % of it, ``speedup_995``), the mean
duration of evaluated candidates (async favours fast ones), the hypervolume of the searched front
scored in the table's report column (``report_hv_*``: NAS-Bench-201's 200-epoch accuracy of the cells
the 12-epoch signal put on the front), which of the table's own Pareto-optimal cells each run evaluated
(``table_front_cells_*``; for an async run that missed, the front cells generational found and it did not,
and whether it would have reached with them: ``reaches_with_gen_table_front_cells``), the real seconds per 1,000
evaluations, and the driver overhead: the real seconds spent in the strategy's ask and tell
over the simulated wall time (a driver that takes longer than that would idle the cluster).

The calibration (on unless ``--no-calibrate``): generational is also run with async's longer
budget, and for every ordered pair of different seeds the benchmark counts how often a run reaches
the other seed's generational hypervolume (``reach_cross_async``, ``reach_cross_gen``). Two runs
of one method end at different hypervolumes, so "async reaches generational's final hypervolume on
every seed" is bounded by that run-to-run noise; ``reach_cross_gen`` shows the bound.

``--aging-duration-weight A`` draws the tournament members of async aging runs with probability
proportional to their evaluation seconds to the power A (the evaluation-time bias counter of
``AgingEvolutionStrategy``; generational runs are unchanged).

``--km "1:0.125,1:0.0625,1.5:0.125"`` adds async runs with other (K/W, M/W) at every W (the
tuning grid). ``--json PATH`` writes everything, with ``{"summary": {W: {"util_async",
"util_gen", "speedup_median", "speedup_worst", "driver_overhead_fraction"}}}``; ``--plot-dir``
gets ``scale_utilisation.png`` and ``scale_speedup.png``.

Usage: python benchmarks/scale.py [--workers 8,32,128,512,1000] [--seeds 10] [--strategies aging,nsga2,thompson]
         [--jobs 2] [--json benchmarks/results/scale.json] [--plot-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_TABLE = ROOT.parent / "shared" / "benchdata" / "nb201_cifar10.csv"


class TimedStrategy:
    """The strategy, with the real seconds of its ask and tell summed in ``seconds``."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def ask(self, n):
        t = time.perf_counter()
        try:
            return self.inner.ask(n)
        finally:
            self.seconds += time.perf_counter() - t

    def tell(self, results):
        t = time.perf_counter()
        try:
            return self.inner.tell(results)
        finally:
            self.seconds += time.perf_counter() - t


class Front2D:
    """Hypervolume of a growing set of 2-D points (both minimised) in the box [0, 1]^2, kept
    incrementally: the non-dominated points sorted by the first objective."""

    def __init__(self):
        self.xs: list[float] = []
        self.ys: list[float] = []

    def add(self, x: float, y: float) -> None:
        import bisect

        i = bisect.bisect_left(self.xs, x)
        if i > 0 and self.ys[i - 1] <= y:
            return  # dominated by a point with smaller x
        if i < len(self.xs) and self.xs[i] == x and self.ys[i] <= y:
            return
        j = i
        while j < len(self.xs) and self.ys[j] >= y:
            j += 1  # points from i on with y >= new y are dominated
        self.xs[i:j] = [x]
        self.ys[i:j] = [y]

    def hv(self) -> float:
        xs = self.xs + [1.0]
        return float(sum((xs[k + 1] - xs[k]) * (1.0 - self.ys[k]) for k in range(len(self.ys))))


def report_hv(points: list[tuple[float, float, float]]) -> float:
    """Hypervolume, in the report column, of the front the search saw: ``points`` are (searched error,
    cost, report error); the members non-dominated in (searched error, cost) are scored by
    (report error, cost). On NAS-Bench-201 the search sees the 12-epoch validation accuracy, a noisy
    stand-in for the 200-epoch accuracy reported here, so this shows whether a strategy's front holds
    up beyond the signal it was chosen on (nothing is chosen on it)."""
    front, best = Front2D(), float("inf")
    for x, y, rep in sorted(points, key=lambda p: (p[0], p[1])):  # of exact ties, the first evaluated counts
        if y < best:  # not dominated by a point of smaller (or equal) searched error
            best = y
            front.add(rep, y)
    return front.hv()


def signal_error(acc: np.ndarray) -> np.ndarray:
    """The searched error of accuracies in percent or in [0, 1]: 1 - accuracy as a fraction."""
    return 1.0 - acc / (100.0 if acc.max() > 1 else 1.0)


def table_front(err: np.ndarray, cost: np.ndarray) -> list[int]:
    """Rows of the table on its own Pareto front in (searched error, cost), both minimised: no other
    row is at least as good in both and better in one. Exact ties are all kept."""
    order = np.lexsort((cost, err))
    out, best = [], float("inf")
    for i in order:
        if cost[i] < best or (out and err[i] == err[out[-1]] and cost[i] == cost[out[-1]]):
            best = float(cost[i])
            out.append(int(i))
    return sorted(out)


def make_strategy(name: str, seed: int, workers: int, duration_weight: float = 0.0, elitist: bool = False,
                  thompson_pending: bool = False, thompson_options: dict | None = None):
    from nas.spaces.nb201 import NB201Space
    from nas.strategies import AgingEvolutionStrategy, RandomStrategy

    obj = ["val_accuracy", COST[0]]
    space = NB201Space()
    if name == "aging":
        pop = max(20, workers)
        return AgingEvolutionStrategy(space, obj, {}, seed, population=pop, tournament=max(5, pop // 20),
                                      duration_weight=duration_weight, elitist=elitist)
    if name == "nsga2":
        return None  # built per mode (steady-state in async)
    if name == "random":
        return RandomStrategy(space, obj, {}, seed)
    if name == "thompson":
        from nas.strategies import ThompsonStrategy

        return ThompsonStrategy(space, obj, {}, seed, **{"pending_in_front": thompson_pending, **(thompson_options or {})})
    raise SystemExit(f"unknown strategy {name!r}: one of {', '.join(STRATEGIES)}")


COST = ["latency_raspi4_ms"]
STRATEGIES = ("aging", "nsga2", "thompson", "random")


def limit_blas_threads(n: int) -> None:
    """Run in each simulation process: at most ``n`` BLAS / OpenMP threads."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)  # holds for the life of the process (nothing restores it)


def run_one(job: dict) -> dict:
    from nas.evaluators.simulated import SimulatedPool, lognormal_durations
    from nas.evaluators.table import TableEvaluator
    from nas.runners import AsyncRunner, GenerationalRunner
    from nas.spaces.nb201 import NB201Space
    from nas.strategies import NSGA2Strategy

    COST[0] = job["cost"]
    W, mode, seed, name = job["workers"], job["mode"], job["seed"], job["strategy"]
    ev = TableEvaluator(job["table"], "val_acc_12ep", "test_acc_200ep", cost_columns=(job["cost"],))
    t = ev.table()
    cost = t.costs[job["cost"]]
    mean_cost, max_cost = float(cost.mean()), float(cost.max())
    dur = lognormal_durations(lambda g: float(cost[t.index[g]]) / mean_cost, job["sigma"], seed=seed,
                              mean=job["mean_seconds"])
    pool = SimulatedPool(W, dur, job["failure_rate"], job["restart_s"], seed)
    if name == "nsga2":
        inner = NSGA2Strategy(NB201Space(), ["val_accuracy", job["cost"]], {}, W, seed, steady_state=mode == "async")
    else:
        inner = make_strategy(name, seed, W, job.get("aging_duration_weight", 0.0) if mode == "async" else 0.0,
                              job.get("aging_elitist", False), job.get("thompson_pending", False),
                              job.get("thompson_options"))
    strat = TimedStrategy(inner)
    budget = job["budget_per_worker"] * W
    t0 = time.perf_counter()
    if mode == "generational":
        results = GenerationalRunner(strat, pool, ev, W, job["budget_per_worker"] - 1, None).run()
    elif mode == "generational_long":  # the calibration: generational itself given async's budget
        results = GenerationalRunner(strat, pool, ev, W, round(job["budget_per_worker"] * job["async_factor"]) - 1,
                                     None).run()
    else:
        k, m = max(1, round(job["k"] * W)), max(1, round(job["m"] * W))
        results = AsyncRunner(strat, pool, ev, int(budget * job["async_factor"]), k, m, None,
                              drain=job.get("drain", "cancel")).run()
    real = time.perf_counter() - t0
    # hypervolume of everything evaluated, against simulated time (completion order)
    done = sorted(results, key=lambda r: (r.extra["sim_finish"], r.extra["sim_start"]))
    front, times, hvs = Front2D(), [], []
    for r in done:
        if r.ok:
            front.add(1.0 - r.metrics["val_accuracy"] / 100.0 if r.metrics["val_accuracy"] > 1 else
                      1.0 - r.metrics["val_accuracy"], r.metrics[job["cost"]] / max_cost)
        times.append(r.extra["sim_finish"])
        hvs.append(front.hv())
    n_at_budget = min(budget, len(done))
    # which of the table's own Pareto-optimal cells the run evaluated: a run on a discrete table reaches the
    # full front's hypervolume only by sampling every one of them, and some have no good neighbour
    t_err = signal_error(t.signal)
    opt = set(table_front(t_err, cost / max_cost))
    front_at_budget = sorted(opt & {t.index[r.genome] for r in done[:n_at_budget] if r.ok})
    front_final = sorted(opt & {t.index[r.genome] for r in done if r.ok})
    ok = [r for r in done[:n_at_budget] if r.ok]
    err = (lambda v: 1.0 - v / 100.0) if ok and ok[0].metrics["val_accuracy"] > 1 else (lambda v: 1.0 - v)
    report_at_budget = report_hv([(err(r.metrics["val_accuracy"]), r.metrics[job["cost"]] / max_cost,
                                   err(r.metrics["report_accuracy"])) for r in ok])
    wall = float(pool.clock)
    durations = [r.extra["sim_finish"] - r.extra["sim_start"] for r in results]
    return {**{k: job[k] for k in ("workers", "mode", "seed", "strategy", "k", "m")},
            "evaluations": len(results), "sim_wall_s": wall, "utilisation": pool.utilisation,
            "utilisation_held": pool.utilisation_held, "utilisation_useful": pool.utilisation_useful,
            "evals_per_sim_s": len(results) / wall if wall else 0.0, "hv_at_budget": hvs[n_at_budget - 1],
            "report_hv_at_budget": report_at_budget,
            "time_at_budget": times[n_at_budget - 1], "final_hv": hvs[-1], "mean_duration_s": float(np.mean(durations)),
            "retries": pool.retries, "real_s": real, "real_s_per_1000": 1000 * real / len(results),
            "table_front_size": len(opt), "table_front_cells_at_budget": front_at_budget,
            "table_front_cells_final": front_final,
            "table_front_points": {str(i): [float(t_err[i]), float(cost[i] / max_cost)] for i in sorted(opt)},
            "final_front": [[x, y] for x, y in zip(front.xs, front.ys)] if mode == "async" else [],
            "driver_s": strat.seconds, "driver_overhead_fraction": strat.seconds / wall if wall else 0.0,
            "times": times if mode == "async" else [], "hvs": hvs if mode == "async" else []}


def time_to(times: list[float], hvs: list[float], target: float) -> float | None:
    for t, h in zip(times, hvs):
        if h >= target - 1e-12:
            return t
    return None


def cross_seed_reach(async_runs: list[dict], gen: list[dict], gen_long: list[dict]) -> dict:
    """How often a run given 1.5x the budget reaches the final hypervolume of generational's run
    of *another* seed (same W and strategy), over every ordered pair of seeds: for async
    (``reach_cross_async``) and, as the calibration, for generational itself given the same longer
    budget (``reach_cross_gen``). Two searches with different random draws end at different
    hypervolumes even when one is the other's method, so "every seed reaches the target" is bounded
    by this run-to-run noise, whatever the mode; ``reach_cross_gen`` measures that bound."""
    def share(runs: list[dict]) -> float | None:
        pairs = [(r["final_hv"] >= g["hv_at_budget"] - 1e-12) for r in runs for g in gen
                 if g["strategy"] == r["strategy"] and g["seed"] != r["seed"]]
        return float(np.mean(pairs)) if pairs else None

    return {"reach_cross_async": share(async_runs), "reach_cross_gen": share(gen_long)}


def summarise(runs: list[dict], workers: list[int], k: float, m: float) -> dict:
    gen = {(r["workers"], r["strategy"], r["seed"]): r for r in runs if r["mode"] == "generational"}
    out: dict = {"per_run": [], "summary": {}, "by_strategy": {}}
    for r in runs:
        if r["mode"] != "async":
            continue
        g = gen[(r["workers"], r["strategy"], r["seed"])]
        t = time_to(r["times"], r["hvs"], g["hv_at_budget"])
        r["time_to_target_s"] = t
        r["speedup"] = g["sim_wall_s"] / t if t else 0.0
        t995 = time_to(r["times"], r["hvs"], 0.995 * g["hv_at_budget"])  # a target a discrete table can be near
        r["speedup_995"] = g["sim_wall_s"] / t995 if t995 else 0.0
        # the table's Pareto-optimal cells generational had evaluated by its budget and async never did
        r["gen_table_front_cells_async_missed"] = sorted(set(g["table_front_cells_at_budget"])
                                                         - set(r["table_front_cells_final"]))
        # would async have reached had it also evaluated those cells? (what a miss is made of)
        with_cells = Front2D()
        for x, y in r["final_front"] + [r["table_front_points"][str(i)]
                                                 for i in r["gen_table_front_cells_async_missed"]]:
            with_cells.add(x, y)
        r["reaches_with_gen_table_front_cells"] = with_cells.hv() >= g["hv_at_budget"] - 1e-12
    long = [r for r in runs if r["mode"] == "generational_long"]
    for r in runs:  # the hypervolume curves stay out of the JSON (tens of thousands of points)
        out["per_run"].append({k: v for k, v in r.items() if k not in ("times", "hvs", "table_front_points")})
    if runs:
        out["table_front_points"] = runs[0]["table_front_points"]
    for W in workers:
        a = [r for r in runs if r["workers"] == W and r["mode"] == "async" and r["k"] == k and r["m"] == m]
        g = [r for r in runs if r["workers"] == W and r["mode"] == "generational"]
        if not a or not g:
            continue
        sp = [r["speedup"] for r in a]
        out["summary"][str(W)] = {
            "util_async": float(np.mean([r["utilisation"] for r in a])),
            "util_gen": float(np.mean([r["utilisation"] for r in g])),
            "util_async_held": float(np.mean([r["utilisation_held"] for r in a])),
            "util_gen_held": float(np.mean([r["utilisation_held"] for r in g])),
            "util_async_useful": float(np.mean([r["utilisation_useful"] for r in a])),
            "util_gen_useful": float(np.mean([r["utilisation_useful"] for r in g])),
            "speedup_median": float(np.median(sp)), "speedup_worst": float(np.min(sp)),
            "speedup_995_median": float(np.median([r["speedup_995"] for r in a])),
            "speedup_995_worst": float(np.min([r["speedup_995"] for r in a])),
            "reached_share": float(np.mean([s > 0 for s in sp])),
            "misses": int(sum(s == 0 for s in sp)),
            "misses_gen_had_a_table_front_cell_async_missed": int(sum(
                r["speedup"] == 0 and bool(r["gen_table_front_cells_async_missed"]) for r in a)),
            "misses_reached_with_gen_table_front_cells": int(sum(
                r["speedup"] == 0 and r["reaches_with_gen_table_front_cells"] for r in a)),
            "table_front_cells_gen": float(np.mean([len(r["table_front_cells_at_budget"]) for r in g])),
            "table_front_cells_async_final": float(np.mean([len(r["table_front_cells_final"]) for r in a])),
            "table_front_size": a[0]["table_front_size"],
            "driver_overhead_fraction": float(max(r["driver_overhead_fraction"] for r in a)),
            **cross_seed_reach(a, g, [r for r in long if r["workers"] == W]),
            "hv_gen": float(np.mean([r["hv_at_budget"] for r in g])),
            "hv_async_at_same_evaluations": float(np.mean([r["hv_at_budget"] for r in a])),
            "report_hv_gen": float(np.mean([r["report_hv_at_budget"] for r in g])),
            "report_hv_async_at_same_evaluations": float(np.mean([r["report_hv_at_budget"] for r in a])),
            "mean_duration_gen": float(np.mean([r["mean_duration_s"] for r in g])),
            "mean_duration_async": float(np.mean([r["mean_duration_s"] for r in a])),
            "real_s_per_1000_async": float(np.mean([r["real_s_per_1000"] for r in a])),
            "real_s_per_1000_gen": float(np.mean([r["real_s_per_1000"] for r in g]))}
        for name in sorted({r["strategy"] for r in a}):
            aa = [r for r in a if r["strategy"] == name]
            gg = [r for r in g if r["strategy"] == name]
            out["by_strategy"].setdefault(name, {})[str(W)] = {
                "util_async": float(np.mean([r["utilisation"] for r in aa])),
                "util_gen": float(np.mean([r["utilisation"] for r in gg])),
                "util_async_held": float(np.mean([r["utilisation_held"] for r in aa])),
                "util_gen_held": float(np.mean([r["utilisation_held"] for r in gg])),
                "util_async_useful": float(np.mean([r["utilisation_useful"] for r in aa])),
                "speedup_median": float(np.median([r["speedup"] for r in aa])),
                "speedup_worst": float(np.min([r["speedup"] for r in aa])),
                "driver_overhead_fraction": float(max(r["driver_overhead_fraction"] for r in aa)),
                **cross_seed_reach(aa, gg, [r for r in long if r["workers"] == W and r["strategy"] == name]),
                "real_s_per_1000_async": float(np.mean([r["real_s_per_1000"] for r in aa]))}
    grid: dict = {}
    for r in runs:
        if r["mode"] == "async":
            grid.setdefault(str(r["workers"]), {}).setdefault(f"K={r['k']}W,M={r['m']}W", []).append(r["speedup"])
    out["km_grid"] = {W: {km: {"speedup_median": float(np.median(v)), "speedup_worst": float(np.min(v))}
                          for km, v in d.items()} for W, d in grid.items()}
    return out


def print_summary(out: dict) -> None:
    print(f"{'W':>6} {'util gen':>9} {'util async':>11} {'speed-up median':>16} {'worst':>7} {'reached':>8} "
          f"{'HV gen':>7} {'HV async':>9} {'dur gen':>8} {'dur async':>10} {'driver':>8} {'real s/1k':>10}")
    for W, s in out["summary"].items():
        print(f"{W:>6} {s['util_gen']:>9.3f} {s['util_async']:>11.3f} {s['speedup_median']:>15.2f}x "
              f"{s['speedup_worst']:>6.2f}x {s['reached_share']:>8.0%} {s['hv_gen']:>7.4f} "
              f"{s['hv_async_at_same_evaluations']:>9.4f} {s['mean_duration_gen']:>8.0f} {s['mean_duration_async']:>10.0f} "
              f"{s['driver_overhead_fraction']:>8.2%} {s['real_s_per_1000_async']:>10.2f}")
    print("hypervolume in the report column of the front searched on, at generational's budget (gen / async): "
          + "; ".join(f"W={W}: {s['report_hv_gen']:.4f} / {s['report_hv_async_at_same_evaluations']:.4f}"
                      for W, s in out["summary"].items()))
    print("the table's own Pareto-optimal cells evaluated, of "
          + str(next(iter(out["summary"].values()))["table_front_size"] if out["summary"] else 0)
          + " (gen at its budget / async at the end); async runs that missed, and of those how many missed a cell "
          "generational had found:")
    for W, s in out["summary"].items():
        print(f"  W={W}: {s['table_front_cells_gen']:.1f} / {s['table_front_cells_async_final']:.1f}; misses "
              f"{s['misses']}, of them {s['misses_gen_had_a_table_front_cell_async_missed']} missing such a cell, "
              f"{s['misses_reached_with_gen_table_front_cells']} of which would reach with those cells added")
    print("utilisation of the worker time held (workers released as they fall idle once nothing more will be "
          "submitted: a generational run's last generation, an async run draining at its budget), gen / async: "
          + "; ".join(f"W={W}: {s['util_gen_held']:.3f} / {s['util_async_held']:.3f}" for W, s in out["summary"].items()))
    print("of it on evaluations that completed (cancelled work and failed attempts left out), gen / async: "
          + "; ".join(f"W={W}: {s['util_gen_useful']:.3f} / {s['util_async_useful']:.3f}" for W, s in out["summary"].items()))
    if any(s.get("reach_cross_gen") is not None for s in out["summary"].values()):
        print("reaching another seed's generational hypervolume within the longer budget (every ordered pair of seeds):")
        for W, s in out["summary"].items():
            print(f"  W={W}: async {s['reach_cross_async']:.0%}, generational itself {s['reach_cross_gen']:.0%} "
                  "(the criterion's own run-to-run noise)")
    for name, d in out["by_strategy"].items():
        print(f"  {name}: " + "; ".join(f"W={W}: speed-up {s['speedup_median']:.2f}x (worst {s['speedup_worst']:.2f}x), "
                                        f"util {s['util_gen']:.2f} -> {s['util_async']:.2f}, driver "
                                        f"{s['driver_overhead_fraction']:.2%}" for W, s in d.items()))
    if any(len(d) > 1 for d in out["km_grid"].values()):
        print("(K, M) grid, median (worst) speed-up:")
        for W, d in out["km_grid"].items():
            print(f"  W={W}: " + "; ".join(f"{km} {v['speedup_median']:.2f}x ({v['speedup_worst']:.2f}x)"
                                           for km, v in d.items()))


def plot(out: dict, plot_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ws = [int(w) for w in out["summary"]]
    s = out["summary"]
    for name, keys, ylabel in (("scale_utilisation.png", (("util_gen", "generational"), ("util_async", "async")),
                                "utilisation"),
                               ("scale_speedup.png", (("speedup_median", "median"), ("speedup_worst", "worst seed")),
                                "time-to-target speed-up (async)")):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for key, label in keys:
            ax.plot(Ws, [s[str(w)][key] for w in Ws], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("workers (simulated)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = plot_dir / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=110)
        tmp.replace(plot_dir / name)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--cost", default="latency_raspi4_ms", help="cost column: second objective and duration model")
    ap.add_argument("--workers", default="8,32,128,512,1000")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--strategies", default="aging,nsga2")
    ap.add_argument("--budget-per-worker", type=int, default=20)
    ap.add_argument("--async-factor", type=float, default=1.5, help="async budget as a multiple of generational's")
    ap.add_argument("--k", type=float, default=1.0, help="K / W")
    ap.add_argument("--m", type=float, default=0.03125, help="M / W")
    ap.add_argument("--km", default="", help="more (K/W:M/W) pairs for the tuning grid, e.g. 1:0.0625,1.5:0.125")
    ap.add_argument("--mean-seconds", type=float, default=600.0, help="mean simulated duration of an evaluation")
    ap.add_argument("--sigma", type=float, default=1.0, help="log-std of the log-normal duration noise")
    ap.add_argument("--failure-rate", type=float, default=0.0)
    ap.add_argument("--restart-s", type=float, default=60.0)
    ap.add_argument("--aging-duration-weight", type=float, default=0.0,
                    help="async aging runs draw tournament members with probability proportional to their "
                         "evaluation seconds to this power (0: uniformly; counters the evaluation-time bias)")
    ap.add_argument("--aging-elitist", action="store_true",
                    help="aging runs (both modes) select as NSGA-II does, from the population and the non-dominated "
                         "set of everything evaluated (AgingEvolutionStrategy(elitist=True))")
    ap.add_argument("--thompson-pending-in-front", action="store_true",
                    help="Thompson's candidates still in flight count as part of the front at their sampled values "
                         "(ThompsonStrategy(pending_in_front=True)); by default they are only kept from being "
                         "proposed again")
    ap.add_argument("--thompson-options", default="{}",
                    help='more ThompsonStrategy keywords as JSON, e.g. \'{"noise": 0.2, "primary_every": 0}\' (both modes)')
    ap.add_argument("--drain", choices=("cancel", "finish"), default="cancel",
                    help="async runs at the budget: cancel what is still in flight (default), or never submit more "
                         "than the budget and let the last candidates finish (AsyncRunner(drain='finish'))")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed ... first-seed + seeds - 1")
    ap.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                    help="skip the calibration runs (generational given async's longer budget; see reach_cross_gen)")
    ap.add_argument("--jobs", type=int, default=2, help="simulations run side by side (processes)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot-dir", type=Path)
    a = ap.parse_args(argv)
    if not a.table.is_file():
        ap.error(f"table {a.table} not found (give --table: a NAS-Bench-201 CSV)")
    try:
        workers = [int(w) for w in a.workers.split(",") if w]
        km = [(a.k, a.m)] + [tuple(float(x) for x in p.split(":")) for p in a.km.split(",") if p]
    except ValueError:
        ap.error("--workers takes integers, --km pairs K/W:M/W")
    if not workers or min(workers) < 1 or a.seeds < 1 or a.budget_per_worker < 2 or a.first_seed < 0:
        ap.error("need workers >= 1, --seeds >= 1, --first-seed >= 0 and --budget-per-worker >= 2")
    try:
        thompson_options = json.loads(a.thompson_options)
        assert isinstance(thompson_options, dict)
    except (ValueError, AssertionError):
        ap.error(f"--thompson-options takes a JSON object, got {a.thompson_options!r}")
    if thompson_options:
        import inspect

        from nas.strategies import ThompsonStrategy

        known = set(inspect.signature(ThompsonStrategy).parameters) - {"space", "objectives", "constraints", "seed"}
        if unknown_keys := sorted(set(thompson_options) - known):
            ap.error(f"--thompson-options: ThompsonStrategy takes no {', '.join(unknown_keys)} "
                     f"(it takes {', '.join(sorted(known))})")
    if a.aging_duration_weight < 0:
        ap.error(f"--aging-duration-weight must be >= 0, got {a.aging_duration_weight}")
    strategies = [s for s in a.strategies.split(",") if s]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if not strategies or unknown:
        ap.error(f"--strategies takes a comma-separated list of {', '.join(STRATEGIES)}; got {a.strategies!r}")
    base = {"table": str(a.table), "cost": a.cost, "sigma": a.sigma, "mean_seconds": a.mean_seconds,
            "failure_rate": a.failure_rate, "restart_s": a.restart_s, "budget_per_worker": a.budget_per_worker,
            "async_factor": a.async_factor, "aging_duration_weight": a.aging_duration_weight,
            "aging_elitist": a.aging_elitist, "thompson_pending": a.thompson_pending_in_front,
            "thompson_options": thompson_options,
            "drain": a.drain}
    jobs = []
    for W in workers:
        for name in strategies:
            for seed in range(a.first_seed, a.first_seed + a.seeds):
                jobs.append({**base, "workers": W, "mode": "generational", "seed": seed, "strategy": name,
                             "k": 0.0, "m": 0.0})
                if a.calibrate:
                    jobs.append({**base, "workers": W, "mode": "generational_long", "seed": seed, "strategy": name,
                                 "k": 0.0, "m": 0.0})
                for k, m in km:
                    jobs.append({**base, "workers": W, "mode": "async", "seed": seed, "strategy": name, "k": k, "m": m})
    import pandas as pd

    n_cells = len(pd.read_csv(a.table, usecols=[0]))
    for W in workers:
        if a.budget_per_worker * W * a.async_factor > 0.5 * n_cells:
            print(f"warning: at W={W} the async budget ({a.budget_per_worker * W * a.async_factor:.0f} evaluations) is "
                  f"over half of the table's {n_cells} architectures: the searches run out of new ones, so lower "
                  "--budget-per-worker there", file=sys.stderr)
    jobs.sort(key=lambda j: -j["workers"])  # the longest first, so the pool ends together
    t0 = time.perf_counter()
    runs = []
    # each simulation gets its share of the cores for its linear algebra: threads beyond the cores
    # contend, and the driver's seconds (the overhead measured here) would then be inflated
    blas_threads = max(1, (os.cpu_count() or 1) // a.jobs)
    with ProcessPoolExecutor(a.jobs, initializer=limit_blas_threads, initargs=(blas_threads,)) as pool:
        for i, r in enumerate(pool.map(run_one, jobs), 1):
            runs.append(r)
            print(f"[{i}/{len(jobs)}] W={r['workers']} {r['strategy']} {r['mode']} seed {r['seed']}: "
                  f"util {r['utilisation']:.3f}, {r['real_s']:.1f} s real", file=sys.stderr, flush=True)
    out = summarise(runs, workers, a.k, a.m)
    out["settings"] = {**base, "workers": workers, "seeds": a.seeds, "first_seed": a.first_seed,
                       "strategies": strategies, "km": km, "jobs": a.jobs, "blas_threads": blas_threads,
                       "command": "python benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out["seconds"] = time.perf_counter() - t0
    print_summary(out)
    print(f"{out['seconds']:.0f} s in all")
    if a.json:
        tmp = a.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(a.json)
    if a.plot_dir:
        a.plot_dir.mkdir(parents=True, exist_ok=True)
        plot(out, a.plot_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

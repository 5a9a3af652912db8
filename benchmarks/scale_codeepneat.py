"""CoDeepNEAT at scale: generational against asynchronous evaluation from 8 to 1,000 simulated workers.

``benchmarks/scale.py`` runs the table-backed strategies (aging, NSGA-II, Thompson) on NAS-Bench-201.
CoDeepNEAT's networks are open-ended graphs of modules, and no table holds them, so this runs the real
``CoDeepNEATStrategy`` (its default populations: 20 modules, 10 blueprints) with the real
``GenerationalRunner`` and ``AsyncRunner`` on the same ``SimulatedPool``, with an analytic stand-in for
training:

- **objectives**: the real parameter count of the built network (``build_codeepneat`` on 8x8 inputs, 10
  classes), and a *synthetic* accuracy, a fixed smooth function of the network (it grows with
  convolutional capacity, channels x kernel area, with diminishing returns, and a little with depth:
  ``tests/analytic.py``'s ``AnalyticGraphEvaluator``, which the strategy tests use). Its figures of
  quality describe the search on that landscape, not on any dataset;
- **duration**: ``--mean-seconds`` x (parameters + 10,000) / 20,000 (a fixed part and a part that grows
  with the network), times log-normal noise of log-std ``--sigma``, drawn per network from the seed;
- **hypervolume** of (1 - accuracy, log10(parameters) / 6), both minimised, in the box [0, 1]^2.

What this measures that the table benchmarks cannot: whether CoDeepNEAT's coevolution keeps evolving
with K networks in flight when K is far above its population sizes (``blueprints_born``,
``modules_born``: members created over the run; ``retired_max``: replaced members kept while networks in
flight use them), and its driver overhead (real seconds in ask and tell over the simulated wall time)
at W = 1,000. Also reported, as in ``scale.py``: utilisation, the time-to-target speed-up (generational's
wall time over the time async needs to reach generational's final hypervolume; 0 when it never does within
1.5 x the budget), hypervolume at generational's budget, mean durations, real seconds per 1,000 evaluations.

Usage: python benchmarks/scale_codeepneat.py [--workers 8,32,128] [--seeds 5] [--budget-per-worker 20]
         [--jobs 2] [--json benchmarks/results/scale_codeepneat.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import Front2D, TimedStrategy, limit_blas_threads, time_to  # noqa: E402

FIXED_PARAMS, PER_DURATION = 10_000, 20_000  # duration = mean_seconds * (params + FIXED) / PER


def point(metrics: dict) -> tuple[float, float]:
    """(1 - accuracy, log10(parameters) / 6), clipped to the unit box."""
    return (min(1.0, max(0.0, 1.0 - metrics["val_accuracy"])),
            min(1.0, math.log10(max(metrics["params"], 1.0)) / 6.0))


class Cached:
    """An evaluator whose metrics (deterministic, seed-free) are computed once per network: the
    duration model reads the parameter count before the simulated evaluation asks for it."""

    def __init__(self, inner):
        self.inner, self.base_seed, self._memo = inner, inner.base_seed, {}

    def metrics(self, genome, seed: int) -> dict[str, float]:
        if genome.key() not in self._memo:
            self._memo[genome.key()] = self.inner.metrics(genome, seed)
        return dict(self._memo[genome.key()])


def run_one(job: dict) -> dict:
    from nas.config import CoDeepNEATConfig
    from nas.evaluators.simulated import SimulatedPool, lognormal_durations
    from nas.runners import AsyncRunner, GenerationalRunner
    from nas.spaces.codeepneat import CoDeepNEATSpace
    from nas.strategies.codeepneat import CoDeepNEATStrategy
    from tests.analytic import AnalyticGraphEvaluator

    W, mode, seed = job["workers"], job["mode"], job["seed"]
    ev = Cached(AnalyticGraphEvaluator(base_seed=seed))

    def base(g) -> float:  # the duration model needs the parameter count before the evaluation runs
        return (ev.metrics(g, 0)["params"] + FIXED_PARAMS) / PER_DURATION

    dur = lognormal_durations(base, job["sigma"], seed=seed, mean=job["mean_seconds"])
    pool = SimulatedPool(W, dur, 0.0, 0.0, seed)
    inner = CoDeepNEATStrategy(CoDeepNEATSpace(), ["val_accuracy", "params"], {}, seed, CoDeepNEATConfig(), W)
    strat = TimedStrategy(inner)
    retired_max = [0]
    tell = strat.inner.tell

    def tell_and_count(results):
        tell(results)
        retired_max[0] = max(retired_max[0], len(getattr(inner.modules, "retired", {}))
                             + len(getattr(inner.blueprints, "retired", {})))

    strat.inner.tell = tell_and_count
    budget = job["budget_per_worker"] * W
    t0 = time.perf_counter()
    if mode == "generational":
        results = GenerationalRunner(strat, pool, ev, W, job["budget_per_worker"] - 1, None).run()
    else:
        results = AsyncRunner(strat, pool, ev, int(budget * job["async_factor"]), W, max(1, round(W / 32)),
                              None).run()
    real = time.perf_counter() - t0
    done = sorted(results, key=lambda r: (r.extra["sim_finish"], r.extra["sim_start"]))
    front, times, hvs = Front2D(), [], []
    for r in done:
        if r.ok:
            front.add(*point(r.metrics))
        times.append(r.extra["sim_finish"])
        hvs.append(front.hv())
    n_at_budget = min(budget, len(done))
    wall = float(pool.clock)
    return {"workers": W, "mode": mode, "seed": seed, "evaluations": len(results), "sim_wall_s": wall,
            "utilisation": pool.utilisation, "hv_at_budget": hvs[n_at_budget - 1], "final_hv": hvs[-1],
            "time_at_budget": times[n_at_budget - 1],
            "mean_duration_s": float(np.mean([r.extra["sim_finish"] - r.extra["sim_start"] for r in results])),
            "blueprints_born": inner.blueprints._next_member, "modules_born": inner.modules._next_member,
            "retired_max": retired_max[0], "real_s": real, "real_s_per_1000": 1000 * real / len(results),
            "driver_s": strat.seconds, "driver_overhead_fraction": strat.seconds / wall if wall else 0.0,
            "times": times if mode == "async" else [], "hvs": hvs if mode == "async" else []}


def summarise(runs: list[dict], workers: list[int]) -> dict:
    gen = {(r["workers"], r["seed"]): r for r in runs if r["mode"] == "generational"}
    out: dict = {"per_run": [], "summary": {}}
    for r in runs:
        if r["mode"] == "async":
            g = gen[(r["workers"], r["seed"])]
            t = time_to(r["times"], r["hvs"], g["hv_at_budget"])
            r["speedup"] = g["sim_wall_s"] / t if t else 0.0
        out["per_run"].append({k: v for k, v in r.items() if k not in ("times", "hvs")})
    for W in workers:
        a = [r for r in runs if r["workers"] == W and r["mode"] == "async"]
        g = [r for r in runs if r["workers"] == W and r["mode"] == "generational"]
        if not a or not g:
            continue
        sp = [r["speedup"] for r in a]

        def mean(rs, key):
            return float(np.mean([r[key] for r in rs]))

        out["summary"][str(W)] = {
            "util_gen": mean(g, "utilisation"), "util_async": mean(a, "utilisation"),
            "speedup_median": float(np.median(sp)), "speedup_worst": float(np.min(sp)),
            "reached": int(sum(s > 0 for s in sp)), "seeds": len(sp),
            "hv_gen": mean(g, "hv_at_budget"), "hv_async_at_same_evaluations": mean(a, "hv_at_budget"),
            "mean_duration_gen": mean(g, "mean_duration_s"), "mean_duration_async": mean(a, "mean_duration_s"),
            "blueprints_born_gen": mean(g, "blueprints_born"), "blueprints_born_async": mean(a, "blueprints_born"),
            "modules_born_gen": mean(g, "modules_born"), "modules_born_async": mean(a, "modules_born"),
            "retired_max_async": float(max(r["retired_max"] for r in a)),
            "driver_overhead_fraction": float(max(r["driver_overhead_fraction"] for r in a + g)),
            "real_s_per_1000_async": mean(a, "real_s_per_1000"), "real_s_per_1000_gen": mean(g, "real_s_per_1000"),
            "driver_s_per_1000_async": float(np.mean([1000 * r["driver_s"] / r["evaluations"] for r in a])),
            "driver_s_per_1000_gen": float(np.mean([1000 * r["driver_s"] / r["evaluations"] for r in g]))}
    return out


def print_summary(out: dict) -> None:
    print(f"{'W':>6} {'util gen':>9} {'util async':>11} {'speed-up median':>16} {'worst':>7} {'reached':>8} "
          f"{'HV gen':>7} {'HV async':>9} {'dur gen':>8} {'dur async':>10} {'blueprints born gen/async':>26} "
          f"{'driver':>8} {'driver s/1k gen/async':>22}")
    for W, s in out["summary"].items():
        print(f"{W:>6} {s['util_gen']:>9.3f} {s['util_async']:>11.3f} {s['speedup_median']:>15.2f}x "
              f"{s['speedup_worst']:>6.2f}x {s['reached']:>5}/{s['seeds']:<2} {s['hv_gen']:>7.4f} "
              f"{s['hv_async_at_same_evaluations']:>9.4f} {s['mean_duration_gen']:>8.0f} "
              f"{s['mean_duration_async']:>10.0f} {s['blueprints_born_gen']:>12.0f} / {s['blueprints_born_async']:<11.0f} "
              f"{s['driver_overhead_fraction']:>8.2%} {s['driver_s_per_1000_gen']:>10.2f} / "
              f"{s['driver_s_per_1000_async']:<9.2f}")
    print("modules born, gen / async: " + "; ".join(
        f"W={W}: {s['modules_born_gen']:.0f} / {s['modules_born_async']:.0f} (retired members at most "
        f"{s['retired_max_async']:.0f})" for W, s in out["summary"].items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="8,32,128")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--budget-per-worker", type=int, default=20, help="generations of population W")
    ap.add_argument("--async-factor", type=float, default=1.5, help="async budget as a multiple of generational's")
    ap.add_argument("--mean-seconds", type=float, default=600.0, help="simulated seconds of a network of 10,000 "
                    "parameters")
    ap.add_argument("--sigma", type=float, default=1.0, help="log-std of the log-normal duration noise")
    ap.add_argument("--jobs", type=int, default=1, help="simulations run side by side (processes)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    try:
        workers = [int(w) for w in a.workers.split(",")]
    except ValueError:
        ap.error(f"--workers takes comma-separated integers, got {a.workers!r}")
    if any(w < 1 for w in workers) or a.seeds < 1 or a.budget_per_worker < 1 or a.jobs < 1:
        ap.error("--workers, --seeds, --budget-per-worker and --jobs must be positive")
    if a.async_factor < 1 or a.mean_seconds <= 0 or a.sigma < 0:
        ap.error("--async-factor must be >= 1, --mean-seconds > 0 and --sigma >= 0")
    jobs = [{"workers": W, "mode": mode, "seed": seed, "budget_per_worker": a.budget_per_worker,
             "async_factor": a.async_factor, "mean_seconds": a.mean_seconds, "sigma": a.sigma}
            for W in workers for seed in range(a.first_seed, a.first_seed + a.seeds)
            for mode in ("generational", "async")]
    jobs.sort(key=lambda j: -j["workers"])  # the longest first
    t0 = time.perf_counter()
    threads = max(1, (os.cpu_count() or 1) // a.jobs)
    with ProcessPoolExecutor(a.jobs, initializer=limit_blas_threads, initargs=(threads,)) as ex:
        runs = []
        for r in ex.map(run_one, jobs):
            runs.append(r)
            print(f"  W={r['workers']} {r['mode']} seed {r['seed']}: {r['evaluations']} evaluations, "
                  f"HV {r['final_hv']:.4f}, blueprints born {r['blueprints_born']}, driver {r['driver_s']:.1f} s "
                  f"({r['driver_overhead_fraction']:.2%})", flush=True)
    out = summarise(runs, workers)
    out["settings"] = {**vars(a), "json": str(a.json) if a.json else None, "blas_threads": threads,
                       "fixed_params": FIXED_PARAMS, "params_per_duration": PER_DURATION,
                       "real_seconds": time.perf_counter() - t0}
    print_summary(out)
    if a.json:
        tmp = a.json.with_name(f".{a.json.name}.tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The simulated clock against a real cluster: the same searches on ``SimulatedPool`` and on Dask.

``benchmarks/scale.py`` reports how the two evaluation modes behave on 8 to 1,000 workers from
``SimulatedPool``, a discrete-event simulation of a cluster. Those figures are only as good as the
simulation, so this runs the same searches both ways and prints them side by side:

- **real**: a Dask ``LocalCluster`` of W worker processes (``DaskPool``), each evaluation a
  NAS-Bench-201 table lookup that sleeps its duration (``TableEvaluator(sim_seconds=...)``);
- **simulated**: ``SimulatedPool(W)`` with the same durations, no sleeping.

Durations are deterministic: ``d_min + (d_max - d_min) * cost / max(cost)`` of the cost column
(Raspberry Pi 4 latency), as in ``benchmarks/async_vs_generational.py``. For each W in
``--workers``, strategy in ``--strategies``, seed and mode (generational: population ``--in-flight``;
async: K = ``--in-flight``, M = ``--batch``, the default cancel at the budget), reported per run and as
means: wall time real and simulated and their ratio, utilisation (the results' evaluation seconds over
W x wall, both ways: work cancelled at the budget does not count), the architectures both runs evaluated (``shared``: the size of the intersection over the
budget; 1.0 when the runs proposed exactly the same ones), whether the two archives are identical, the
final hypervolume fraction both ways, the worker-seconds left idle per evaluation both ways
(``idle_per_eval_{real,sim}_s``: the difference is what the simulation leaves out), the real run's driver
seconds (ask and tell) per evaluation, and how much longer than its duration a real evaluation held its
worker (``sleep_overshoot_s``).

With ``--adaptive`` the cluster is an adaptive LocalCluster of W workers, which retires idle workers
once nothing more will be submitted (a generational search's last generation; with ``--drain finish``
an async search's drain); the worker time it held is read off the scheduler's own worker events and
printed beside ``SimulatedPool``'s ``held_seconds`` (``utilisation_held_{real,sim}``: results' seconds
over the worker time held). Without it the real cluster is fixed and holds every worker throughout.

The simulation leaves out what the real cluster adds: the scheduler's round trips and the driver's
own time. Where the wall times differ, that is the measure of it; where the archives differ, the
order in which near-simultaneous results arrived differed (a real cluster's jitter), and the runs
then went their own ways.

Usage: python benchmarks/sim_fidelity.py [--workers 4,8] [--strategies aging,thompson] [--seeds 2]
         [--budget 160] [--modes generational,async] [--drain cancel|finish] [--adaptive]
         [--json benchmarks/results/sim_fidelity.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from async_vs_generational import make_strategy  # noqa: E402  aging (population 20) and Thompson, as there


def run_one(mode: str, pool, evaluator, strategy, args) -> tuple[list, float, float, tuple[float, float]]:
    """The results, the real seconds of the run, the real seconds of its driver (ask and tell), and
    when the run began and ended (``time.time()``)."""
    from scale import TimedStrategy

    from nas.runners import AsyncRunner, GenerationalRunner

    strategy = TimedStrategy(strategy)
    began, t0 = time.time(), time.perf_counter()
    if mode == "async":
        runner = AsyncRunner(strategy, pool, evaluator, args.budget, args.in_flight, args.batch, None, drain=args.drain)
    else:
        generations = int(np.ceil(args.budget / args.in_flight)) - 1
        runner = GenerationalRunner(strategy, pool, evaluator, args.in_flight, generations, None)
    results = runner.run()
    return results, time.perf_counter() - t0, strategy.seconds, (began, time.time())


def _scheduler_plugin():
    from distributed.diagnostics.plugin import SchedulerPlugin

    return SchedulerPlugin


class WorkerTimes(_scheduler_plugin()):
    """A Dask scheduler plugin that records when each worker joined and left, so that the worker
    time a run held can be read off a real cluster."""

    name = "evonas-worker-times"

    def __init__(self, scheduler):
        now = time.time()
        self.up = {w: now for w in scheduler.workers}  # worker -> when it joined (or when we started watching)
        self.spans: list[tuple[float, float]] = []

    def add_worker(self, scheduler=None, worker=None, **kwargs) -> None:
        self.up[worker] = time.time()

    def remove_worker(self, scheduler=None, worker=None, **kwargs) -> None:
        t = self.up.pop(worker, None)
        if t is not None:
            self.spans.append((t, time.time()))

    def held(self, start: float, end: float) -> float:
        """Worker-seconds held between ``start`` and ``end`` (``time.time()``)."""
        spans = self.spans + [(t, end) for t in list(self.up.values())]
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=ROOT.parent / "shared/benchdata/nb201_cifar10.csv")
    ap.add_argument("--signal-column", default="val_acc_12ep")
    ap.add_argument("--report-column", default="test_acc_200ep")
    ap.add_argument("--cost-column", default="latency_raspi4_ms")
    ap.add_argument("--workers", default="4,8")
    ap.add_argument("--strategies", default="aging,thompson")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=160)
    ap.add_argument("--in-flight", type=float, default=1.0, help="K and the generational population, times W")
    ap.add_argument("--batch", type=float, default=0.25, help="async M, times W")
    ap.add_argument("--d-min", type=float, default=0.05, help="seconds of the fastest candidate")
    ap.add_argument("--d-max", type=float, default=1.0, help="seconds of the slowest candidate")
    ap.add_argument("--modes", default="generational,async")
    ap.add_argument("--drain", choices=("cancel", "finish"), default="cancel", help="async runs at the budget")
    ap.add_argument("--adaptive", action="store_true",
                    help="an adaptive LocalCluster of W workers (evaluation.adaptive: {minimum: W, maximum: W}): "
                         "it retires idle workers once nothing more will be submitted; the worker time it held is "
                         "measured from the scheduler's own events, against the simulation's")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if not a.table.is_file():
        ap.error(f"table {a.table} not found (give --table: a NAS-Bench-201 CSV)")
    try:
        workers = [int(w) for w in a.workers.split(",") if w]
    except ValueError:
        ap.error(f"--workers takes comma-separated integers, got {a.workers!r}")
    strategies = [s for s in a.strategies.split(",") if s]
    if not strategies or set(strategies) - {"aging", "thompson"}:
        ap.error(f"--strategies takes aging and/or thompson, got {a.strategies!r}")
    modes = [s for s in a.modes.split(",") if s]
    if not modes or set(modes) - {"generational", "async"}:
        ap.error(f"--modes takes generational and/or async, got {a.modes!r}")
    if not workers or min(workers) < 1 or a.seeds < 1 or a.budget < 2 or not 0 < a.d_min <= a.d_max:
        ap.error("need workers >= 1, --seeds >= 1, --budget >= 2 and 0 < --d-min <= --d-max")

    from nas.benchmark import BenchmarkSpec, hv_fraction, table_hypervolume
    from nas.evaluators.dask import DaskPool
    from nas.evaluators.simulated import SimulatedPool
    from nas.evaluators.table import TableEvaluator

    spec = BenchmarkSpec(a.table, a.signal_column, a.report_column, (a.cost_column,))
    table = spec.evaluator().table()
    cost = table.costs[a.cost_column]
    scale = (a.d_max - a.d_min) / float(cost.max())
    reference = table_hypervolume(table, spec)
    objectives = ["val_accuracy", a.cost_column]
    lookup = TableEvaluator(a.table, a.signal_column, a.report_column, (a.cost_column,))
    sleeper = TableEvaluator(a.table, a.signal_column, a.report_column, (a.cost_column,), sim_seconds=a.d_min,
                             sim_seconds_column=a.cost_column, sim_scale=scale)

    def duration(g) -> float:
        return a.d_min + scale * float(cost[table.index[g]])

    print(f"durations {a.d_min:.3f}-{a.d_max:.3f} s from {a.cost_column}; budget {a.budget}; "
          f"K = population = {a.in_flight:g} W, M = {a.batch:g} W", flush=True)
    runs = []
    t_all = time.perf_counter()
    for W in workers:
        k, m = max(1, round(a.in_flight * W)), max(1, round(a.batch * W))
        args = argparse.Namespace(budget=a.budget, in_flight=k, batch=m, drain=a.drain)
        with DaskPool(workers=W, adaptive=(W, W) if a.adaptive else None) as dask_pool:
            # the LocalCluster's scheduler runs in this process: a plugin added to it directly can be read
            # back here (one sent with Client.register_plugin would be a copy)
            scheduler = dask_pool._cluster.scheduler
            watch = WorkerTimes(scheduler)
            scheduler.add_plugin(watch)
            for name in strategies:
                for seed in range(a.first_seed, a.first_seed + a.seeds):
                    for mode in modes:
                        dask_pool.queue()  # the workers an earlier run's drain retired come back first
                        dask_pool.client.wait_for_workers(W, timeout=120)
                        real, real_wall, driver, window = run_one(mode, dask_pool, sleeper,
                                                                  make_strategy(name, objectives, seed), args)
                        held_real = watch.held(*window)
                        sim_pool = SimulatedPool(W, duration)
                        sim, _, _, _ = run_one(mode, sim_pool, lookup, make_strategy(name, objectives, seed), args)
                        sim_wall = float(sim_pool.clock)
                        busy_real = sum(r.eval_seconds for r in real)
                        rows_real = [table.index[r.genome] for r in real if r.ok]
                        rows_sim = [table.index[r.genome] for r in sim if r.ok]
                        run = {
                            "workers": W, "strategy": name, "seed": seed, "mode": mode, "k": k, "m": m,
                            "evaluations_real": len(real), "evaluations_sim": len(sim),
                            "wall_real_s": real_wall, "wall_sim_s": sim_wall, "wall_ratio": real_wall / sim_wall,
                            "utilisation_real": busy_real / (W * real_wall),
                            # on results only, as the real figure: work cancelled at the budget left out
                            "utilisation_sim": (sim_pool.busy_seconds - sim_pool.wasted_seconds) / (W * sim_wall),
                            # worker-seconds not spent on a result, per evaluation (idle, or on work cancelled
                            # at the budget): what the simulation leaves out shows as the difference
                            "idle_per_eval_real_s": (W * real_wall - busy_real) / len(real),
                            "idle_per_eval_sim_s": (W * sim_wall - sim_pool.busy_seconds + sim_pool.wasted_seconds)
                            / len(sim),
                            "driver_per_eval_s": driver / len(real),
                            # the worker time held, over the run: a cluster that retires idle workers holds less
                            "held_real_s": held_real, "held_sim_s": sim_pool.held_seconds,
                            "utilisation_held_real": busy_real / held_real,
                            "utilisation_held_sim": (sim_pool.busy_seconds - sim_pool.wasted_seconds)
                            / sim_pool.held_seconds,
                            "shared": len(set(rows_real) & set(rows_sim)) / a.budget,
                            "identical": [r.genome for r in real] == [r.genome for r in sim],
                            "hv_real": hv_fraction(table, spec, rows_real, reference),
                            "hv_sim": hv_fraction(table, spec, rows_sim, reference),
                            "sleep_overshoot_s": float(np.mean([r.eval_seconds - duration(r.genome) for r in real])),
                            "mean_duration_real_s": float(np.mean([duration(r.genome) for r in real])),
                            "mean_duration_sim_s": float(np.mean([duration(r.genome) for r in sim])),
                        }
                        runs.append(run)
                        print(f"W={W} {name} seed {seed} {mode:<12}: wall {real_wall:6.2f} s real / "
                              f"{sim_wall:6.2f} s simulated ({run['wall_ratio']:.3f}), utilisation "
                              f"{run['utilisation_real']:.3f} / {run['utilisation_sim']:.3f}, shared "
                              f"{run['shared']:.2f}{' (identical)' if run['identical'] else ''}, hv "
                              f"{run['hv_real']:.4f} / {run['hv_sim']:.4f}"
                              + (f", of the worker time held {run['utilisation_held_real']:.3f} / "
                                 f"{run['utilisation_held_sim']:.3f} ({held_real:.1f} / {sim_pool.held_seconds:.1f} "
                                 "worker-s)" if a.adaptive else ""), flush=True)
    summary = {}
    print(f"\n{'W':>5} {'mode':<13}{'wall real/sim':>14}{'util real':>11}{'util sim':>10}{'shared':>8}"
          f"{'identical':>11}{'idle s/eval real':>18}{'sim':>7}{'driver s/eval':>15}{'sleep overshoot s':>19}"
          + (f"{'held util real':>16}{'sim':>7}" if a.adaptive else ""))
    for W in workers:
        for mode in modes:
            rs = [r for r in runs if r["workers"] == W and r["mode"] == mode]
            s = {key: float(np.mean([r[key] for r in rs])) for key in
                 ("wall_ratio", "utilisation_real", "utilisation_sim", "shared", "idle_per_eval_real_s",
                  "idle_per_eval_sim_s", "driver_per_eval_s", "sleep_overshoot_s", "hv_real", "hv_sim",
                  "utilisation_held_real", "utilisation_held_sim")}
            s["identical"] = sum(r["identical"] for r in rs)
            s["runs"] = len(rs)
            summary.setdefault(str(W), {})[mode] = s
            print(f"{W:>5} {mode:<13}{s['wall_ratio']:>14.3f}{s['utilisation_real']:>11.3f}"
                  f"{s['utilisation_sim']:>10.3f}{s['shared']:>8.2f}{s['identical']:>6d} of {s['runs']:<2d}"
                  f"{s['idle_per_eval_real_s']:>18.4f}{s['idle_per_eval_sim_s']:>7.4f}{s['driver_per_eval_s']:>15.4f}"
                  f"{s['sleep_overshoot_s']:>19.4f}"
                  + (f"{s['utilisation_held_real']:>16.3f}{s['utilisation_held_sim']:>7.3f}" if a.adaptive else ""))
    seconds = time.perf_counter() - t_all
    print(f"{seconds:.0f} s in all")
    if a.json:
        from nas.io import atomic_write_json

        atomic_write_json(a.json, {"runs": runs, "summary": summary, "seconds": seconds,
                                   "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
                                                "command": "python benchmarks/sim_fidelity.py "
                                                           + " ".join(argv if argv is not None else sys.argv[1:])}})
        print(f"json: {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

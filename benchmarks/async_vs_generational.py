"""Asynchronous against generational evaluation: same strategy, budget and evaluator, one run.

The evaluator is the tabular one on NAS-Bench-201 with a *simulated* evaluation time per
candidate proportional to a cost column (``--cost-column``, by default Raspberry Pi 4
latency): ``duration = d_min + (d_max - d_min) * cost / max(cost)``, so the slowest candidate
takes ``d_max / d_min`` (default 20) times as long as the fastest. Simulated durations
sleep, so there may be more workers than cores.

Both modes run on one LocalCluster of ``--workers`` processes:
- generational: ``population = --in-flight`` candidates per generation, all awaited;
- async: K = ``--in-flight`` in flight, the strategy updated every M = ``--batch`` results.

Printed, and with ``--json PATH`` written: per mode ``wall_s``, ``utilization`` (sum of
evaluation busy time / (workers x wall time)), ``evals_per_s``, ``final_hv_fraction``
(hypervolume of the evaluated set, test error and normalised cost, over that of the table's
true front), ``mean_eval_s`` (the mean duration of the evaluated candidates: async favours
fast ones); and ``time_to_target_speedup``: the wall time generational mode needs to reach
its own final hypervolume divided by the time async mode needs to reach the same value (0
when it never does), per seed; the summary is the mean over ``--repeats`` seeds (the median
for the speed-up).
The hypervolume-against-wall-time plot goes to ``--plot``.

Usage: python benchmarks/async_vs_generational.py [--table CSV] [--workers 4] [--budget 200]
         [--in-flight 8] [--batch 2] [--strategy aging] [--seed 0] [--repeats 3]
         [--json benchmarks/results/async_vs_generational.json]
         [--plot benchmarks/results/async_vs_generational.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_strategy(name: str, objectives: list[str], seed: int):
    from nas.spaces.nb201 import NB201Space
    from nas.strategies import AgingEvolutionStrategy, LocalSearchStrategy, RandomStrategy, ThompsonStrategy

    space = NB201Space()
    if name == "aging":
        return AgingEvolutionStrategy(space, objectives, {}, seed, population=20, tournament=5)
    if name == "thompson":
        return ThompsonStrategy(space, objectives, {}, seed)
    if name == "local_search":
        return LocalSearchStrategy(space, objectives, {}, seed)
    if name == "random":
        return RandomStrategy(space, objectives, {}, seed)
    raise SystemExit(f"unknown --strategy {name!r}: aging, thompson, local_search or random")


def run_mode(mode: str, args, pool, evaluator, spec, table, reference: float, workdir: Path) -> dict:
    from nas.benchmark import hv_fraction
    from nas.runners import AsyncRunner, GenerationalRunner

    strategy = make_strategy(args.strategy, spec.objectives, args.seed)
    times, rows, curve = [], [], []
    t0 = time.perf_counter()

    def on_result(r) -> None:
        times.append(time.perf_counter() - t0)
        rows.append(table.index[r.genome])
        curve.append(hv_fraction(table, spec, rows, reference))

    if mode == "async":
        runner = AsyncRunner(strategy, pool, evaluator, args.budget, args.in_flight, args.batch,
                             workdir / mode, on_result=on_result)
    else:
        generations = int(np.ceil(args.budget / args.in_flight)) - 1
        runner = GenerationalRunner(strategy, pool, evaluator, args.in_flight, generations, workdir / mode,
                                    on_result=on_result)
    t0 = time.perf_counter()
    results = runner.run()
    wall = time.perf_counter() - t0
    busy = sum(r.eval_seconds for r in results)
    return {"wall_s": wall, "utilization": busy / (args.workers * wall), "evals_per_s": len(results) / wall,
            "final_hv_fraction": curve[-1], "mean_eval_s": busy / len(results), "evaluated": len(results),
            "generations": len(runner.generation_log), "cancelled": len(getattr(runner, "cancelled", [])),
            "curve": {"seconds": times, "hv_fraction": curve}}


def time_to(curve: dict, target: float) -> float | None:
    for t, hv in zip(curve["seconds"], curve["hv_fraction"]):
        if hv >= target - 1e-12:
            return t
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=str(ROOT.parent / "shared/benchdata/nb201_cifar10.csv"))
    ap.add_argument("--signal-column", default="val_acc_12ep")
    ap.add_argument("--report-column", default="test_acc_200ep")
    ap.add_argument("--cost-column", default="latency_raspi4_ms")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--strategy", default="aging")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="seeds seed..seed+repeats-1, both modes each")
    ap.add_argument("--d-min", type=float, default=0.05, help="seconds of the fastest candidate")
    ap.add_argument("--d-max", type=float, default=1.0, help="seconds of the slowest candidate")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path, default=ROOT / "benchmarks/results/async_vs_generational.png")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/evonas-async-bench"))
    args = ap.parse_args()
    if args.workers < 4:
        raise SystemExit("--workers must be at least 4")
    if not (0 < args.batch <= args.in_flight):
        raise SystemExit("need 0 < --batch <= --in-flight")

    from nas.benchmark import BenchmarkSpec, table_hypervolume
    from nas.evaluators.dask import DaskPool
    from nas.evaluators.table import TableEvaluator

    spec = BenchmarkSpec(args.table, args.signal_column, args.report_column, (args.cost_column,))
    table = spec.evaluator().table()
    cost = table.costs[args.cost_column]
    scale = (args.d_max - args.d_min) / float(cost.max())
    evaluator = TableEvaluator(args.table, args.signal_column, args.report_column, (args.cost_column,),
                               base_seed=args.seed, sim_seconds=args.d_min, sim_seconds_column=args.cost_column,
                               sim_scale=scale)
    durations = args.d_min + scale * cost
    reference = table_hypervolume(table, spec)
    print(f"table {args.table}: simulated durations {durations.min():.3f}-{durations.max():.3f} s "
          f"(ratio {durations.max() / durations.min():.1f}), mean over the table {durations.mean():.3f} s")
    print(f"strategy {args.strategy}, budget {args.budget}, {args.workers} workers, "
          f"generational population {args.in_flight}, async K={args.in_flight} M={args.batch}, seed {args.seed}")

    runs = []
    with DaskPool(workers=args.workers) as pool:
        for rep in range(args.repeats):
            seed_args = argparse.Namespace(**{**vars(args), "seed": args.seed + rep})
            run = {}
            for mode in ("generational", "async"):
                run[mode] = run_mode(mode, seed_args, pool, evaluator, spec, table, reference, args.workdir)
            target = run["generational"]["final_hv_fraction"]
            t_gen, t_async = time_to(run["generational"]["curve"], target), time_to(run["async"]["curve"], target)
            # async never reaching generational's final hypervolume counts as no speed-up at all (0)
            run["time_to_target_speedup"] = (t_gen / t_async) if t_async else 0.0
            run["target_hv_fraction"], run["seed"] = target, seed_args.seed
            print(f"  seed {seed_args.seed}: generational {run['generational']['wall_s']:.1f} s, "
                  f"async {run['async']['wall_s']:.1f} s; time to hv {target:.4f}: generational {t_gen:.1f} s, "
                  + (f"async {t_async:.1f} s ({t_gen / t_async:.2f}x)" if t_async else "async never reached it"))
            runs.append(run)

    keys = ["wall_s", "utilization", "evals_per_s", "final_hv_fraction", "mean_eval_s", "evaluated", "generations",
            "cancelled"]
    out = {mode: {k: float(np.mean([r[mode][k] for r in runs])) for k in keys} for mode in ("generational", "async")}
    speedups = [r["time_to_target_speedup"] for r in runs]
    out["time_to_target_speedup"] = float(np.median(speedups))
    out["time_to_target_speedups"] = speedups
    out["runs"] = runs
    out["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    print(f"\nmean over {args.repeats} seed(s)")
    print(f"{'':<20}{'generational':>14}{'async':>14}")
    for k in keys:
        print(f"{k:<20}{out['generational'][k]:>14.4f}{out['async'][k]:>14.4f}")
    print(f"time_to_target_speedup (median over seeds): {out['time_to_target_speedup']:.2f}x "
          f"(per seed: {', '.join(f'{v:.2f}' for v in speedups)})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, colour in (("generational", "tab:blue"), ("async", "tab:orange")):
        for i, r in enumerate(runs):
            c = r[mode]["curve"]
            ax.step(c["seconds"], c["hv_fraction"], where="post", color=colour, alpha=0.8,
                    label=mode if i == 0 else None)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("hypervolume fraction")
    ax.set_title(f"{args.strategy}, {args.workers} workers, budget {args.budget}")
    ax.legend()
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=120)
    print(f"plot: {args.plot}")
    if args.json:
        from nas.io import atomic_write_json

        atomic_write_json(args.json, out)
        print(f"json: {args.json}")


if __name__ == "__main__":
    main()

"""Benchmark of the default pipeline: where the time goes, and how well the supernet ranks.

Prints, from one invocation:
1. the wall time of each stage of a default ``evonas run`` (run here unless ``--reuse``);
2. orchestration time (Prefect ephemeral API, flow/task bookkeeping, Dask cluster start-up,
   process start and imports) against time spent doing the stages' work, and, inside search,
   the Dask evaluation wall time against the evaluation busy time (sum over candidates);
3. the supernet's ranking quality: ``benchmarks/supernet_ranking.py`` on N subnets spread
   over the space's sizes (inherited against stand-alone accuracy, Kendall tau, Spearman,
   spread of stand-alone accuracy).

4. with ``--compare random`` instead: the default search against random search on the last
   run's supernet and surrogate samples, over ``--seeds``, the same number of evaluations each
   (the search budget, plus the surrogate stage's samples both hold): the hypervolume of each
   front (the search's validation score vs params, one normalisation box; also in argmax
   validation accuracy when the search ranks on ``val_soft_accuracy``) and the stand-alone test
   accuracy (``--epochs`` from scratch, the mean of ``--train-seeds`` trainings) of the
   best-scored network each finds under each size limit (``--limits``, fractions of the
   largest subnet's params). ``--reuse-searches OLD.json [...]`` takes the searches and picks of
   earlier comparisons (different search seeds) and trains only the stand-alone seeds they lack.

Usage:  python benchmarks/pipeline.py [--params params.yaml] [--reuse] [--subnets 24]
                                      [--epochs 20] [--json benchmarks/results/pipeline.json]
        python benchmarks/pipeline.py --compare random [--seeds 0 1 2] [--limits 0.25 0.6]
                                      [--epochs 20] [--train-seeds 1] [--reuse-searches OLD.json ...]
                                      [--json benchmarks/results/compare_random.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_pipeline(params: Path, overrides: list[str]) -> float:
    exe = Path(sys.executable).parent / "evonas"
    cmd = [str(exe), "run", "--params", str(params)] + [a for o in overrides for a in ("--set", o)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"evonas run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall


def reused_searches(args, limits: list[float], data) -> list[dict]:
    """The searches (fronts, hypervolumes, picks) of recorded ``--compare random`` JSONs, in order,
    each pick's stand-alone runs kept as its first training seeds, after checking that each was made
    with the same size limits, epochs, overrides and data, and that no search seed is in two."""
    runs, seen = [], set()
    for path in args.reuse_searches:
        rec = json.loads(Path(path).read_text())
        problems = []
        if [float(f) for f in rec["limits"]] != limits:
            problems.append(f"size limits {rec['limits']} (these: {limits})")
        if rec["standalone_epochs"] != args.epochs:
            problems.append(f"{rec['standalone_epochs']} stand-alone epochs (these: {args.epochs})")
        if rec.get("overrides", []) != args.overrides:
            problems.append(f"overrides {rec.get('overrides')} (these: {args.overrides})")
        if rec.get("dataset_hash") not in (None, data.dataset_hash):
            problems.append(f"data {rec['dataset_hash']} (the prepared data here: {data.dataset_hash})")
        if seen & set(rec["seeds"]):
            problems.append(f"search seeds {sorted(seen & set(rec['seeds']))}, which an earlier file already holds")
        if problems:
            sys.exit(f"error: --reuse-searches {path} was made with " + "; ".join(problems))
        seen |= set(rec["seeds"])
        checked = rec.get("dataset_hash") is not None
        for r in rec["runs"]:
            for p in r["picks"].values():
                if "standalone_runs" not in p:  # a record of one training seed per pick (before --train-seeds)
                    first = {"seed_index": 0, "val": p["standalone_val"], "test": p["standalone_test"]}
                    # without the record's data hash, its first seed is trained again and compared instead of reused
                    p["standalone_runs"] = [first] if checked else []
                    if not checked:
                        p["recorded_first_seed"] = first
        runs += rec["runs"]
        print(f"reusing the {len(rec['runs'])} searches of {path} (seeds {rec['seeds']})"
              + ("" if checked else "; it does not record its data's hash, so each pick's first training seed is "
                 "trained again and compared with the record"), flush=True)
    return runs


def compare_random(args) -> None:
    """The default search against random search on the last run's supernet, same evaluations."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    import pandas as pd

    from benchmarks.supernet_ranking import REPEAT_SEED_STEP, _init_worker, check_artifacts, standalone
    from nas.config import load_config
    from nas.genome import Genome, candidate_seed
    from nas.objectives import to_minimise
    from nas.pareto import hypervolume, non_dominated
    from nas.runners import read_populations
    from nas.stages import load_prior, objective_bounds, run_search

    base = load_config(args.params, args.overrides)
    bundle, data = check_artifacts(base)
    default = base.search.strategy if base.search.strategy != "auto" else "msunas"
    prior = load_prior(base)
    largest = bundle.costs(bundle.space.largest())["params"]
    limits = [float(f) for f in args.limits]
    acc = base.search.accuracy_objective  # what the search ranks on (params.yaml: val_soft_accuracy)
    scores = list(dict.fromkeys([acc, "val_accuracy"]))
    boxes = {s: objective_bounds([s, "params"], prior) for s in scores}
    prior_rows = pd.DataFrame([{"genome": g.values, **{s: m[s] for s in scores}, "params": m["params"]}
                               for g, m in prior])
    print(f"default search '{default}' against random search: "
          f"{'the searches of ' + ', '.join(map(str, args.reuse_searches)) if args.reuse_searches else 'seeds ' + str(args.seeds)}, "
          f"{base.search.population} x "
          f"{base.search.generations + 1} evaluations each, both also holding the surrogate stage's {len(prior)} "
          f"sampled subnets; size limits {[f'{f:.0%}' for f in limits]} of the largest subnet ({largest:.0f} params); "
          f"fronts and picks by {acc}",
          flush=True)
    runs = reused_searches(args, limits, data) if args.reuse_searches else []
    for seed in () if args.reuse_searches else args.seeds:
        for strategy in (default, "random"):
            out = ROOT / "artifacts" / "compare" / f"{strategy}-seed{seed}"
            cfg = load_config(args.params, args.overrides + [
                f"seed={seed}", f"search.strategy={strategy}", f"search.out_dir={out}",
                f"selection.reports_dir={out / 'reports'}"])
            t0 = time.perf_counter()
            run_search(cfg, resume=False)
            pop = read_populations(out / "populations")
            pop = pop[pop.status == "ok"]
            rows = pd.concat([prior_rows, pd.DataFrame({"genome": [tuple(json.loads(g)) for g in pop.genome],
                                                        **{s: pop[s] for s in scores}, "params": pop.params})],
                             ignore_index=True)
            rows["genome"] = [tuple(g) for g in rows.genome]
            rows = rows.drop_duplicates("genome").reset_index(drop=True)
            hv = {}
            for s in scores:
                F = np.array([to_minimise(r, [s, "params"]) for r in rows.to_dict("records")])
                nd = non_dominated(F)
                hv[s] = (hypervolume(F[nd], *boxes[s]), len(nd))
            run = {"seed": seed, "strategy": strategy, "n_candidates": int(len(rows)), "score": acc,
                   "hypervolume": hv[acc][0], "n_front": int(hv[acc][1]),
                   "hypervolume_val_accuracy": hv["val_accuracy"][0],
                   "search_seconds": time.perf_counter() - t0, "picks": {}}
            for f in limits:
                ok = rows[rows.params <= f * largest]
                best = ok.sort_values([acc, "params"], ascending=[False, True]).iloc[0]
                run["picks"][f"{f:g}"] = {"genome": list(best.genome), "params": int(best.params),
                                          "val_accuracy": float(best.val_accuracy), "score": float(best[acc]),
                                          "architecture": bundle.space.describe(Genome(best.genome, bundle.space.name))}
            runs.append(run)
            print(f"  seed {seed} {strategy:8s} hypervolume {run['hypervolume']:.4f} ({run['n_front']} on the front of "
                  f"{run['n_candidates']}; in val_accuracy {run['hypervolume_val_accuracy']:.4f}) in "
                  f"{run['search_seconds']:.0f} s", flush=True)
    # every distinct pick trained from scratch --train-seeds times (the same network picked twice is
    # trained once per seed; seed r is the candidate's seed + r * REPEAT_SEED_STEP, as supernet_ranking's
    # repeats); stand-alone runs a reused comparison already holds are not trained again
    trained: dict[tuple, list[dict]] = {}
    size: dict[tuple, int] = {}
    for r in runs:
        for p in r["picks"].values():
            g = tuple(p["genome"])
            size[g] = p["params"]
            trained.setdefault(g, [t for t in p.get("standalone_runs", []) if t["seed_index"] < args.train_seeds])
    jobs = [(g, k) for k in range(args.train_seeds) for g in sorted(trained)
            if k not in {t["seed_index"] for t in trained[g]}]
    print(f"training {len(trained)} distinct picks stand-alone for {args.epochs} epochs x {args.train_seeds} seed(s): "
          f"{len(jobs)} trainings, {sum(len(v) for v in trained.values())} reused ...", flush=True)
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        futs = {pool.submit(standalone, str(args.params), args.overrides, list(g),
                            candidate_seed(base.seed, Genome(g, bundle.space.name)) + k * REPEAT_SEED_STEP,
                            args.epochs): (g, k) for g, k in jobs}
        for done, fut in enumerate(futs, 1):
            g, k = futs[fut]
            res = fut.result()
            trained[g].append({"seed_index": k, **res})
            print(f"  [{done:3d}/{len(jobs)}] pick of {size[g]} params, seed {k}: val {res['val']:.4f} test {res['test']:.4f} "
                  f"({res['seconds']:.0f} s)", flush=True)
    for r in runs:
        for p in r["picks"].values():
            mine = sorted(trained[tuple(p["genome"])], key=lambda t: t["seed_index"])
            if p.get("recorded_first_seed"):
                again = mine[0]
                same = abs(again["test"] - p["recorded_first_seed"]["test"]) < 1e-9 and \
                    abs(again["val"] - p["recorded_first_seed"]["val"]) < 1e-9
                print(f"  seed {r['seed']} {r['strategy']} pick of {p['params']} params, first seed trained again: "
                      f"test {again['test']:.4f} (recorded {p['recorded_first_seed']['test']:.4f}) "
                      f"{'reproduced' if same else 'DIFFERS'}", flush=True)
                p["first_seed_reproduced"] = bool(same)
            p.update(standalone_runs=mine, standalone_val=float(np.mean([t["val"] for t in mine])),
                     standalone_test=float(np.mean([t["test"] for t in mine])))

    print(f"\n{'seed':>4s} {'strategy':8s} {'hypervolume':>11s} {'hv(acc)':>7s}" +
          "".join(f"  {'<= ' + format(f, '.0%'):>7s}: {'params':>7s} {'score':>6s} {'inh.val':>7s} {'test':>6s}"
                  for f in limits))
    for r in runs:
        print(f"{r['seed']:4d} {r['strategy']:8s} {r['hypervolume']:11.4f} {r['hypervolume_val_accuracy']:7.4f}" + "".join(
            f"  {'':7s}  {p['params']:7d} {p['score']:6.4f} {p['val_accuracy']:7.4f} {p['standalone_test']:6.4f}"
            for p in r["picks"].values()))
    summary = {}
    for strategy in (default, "random"):
        mine = [r for r in runs if r["strategy"] == strategy]
        summary[strategy] = {"hypervolume_mean": float(np.mean([r["hypervolume"] for r in mine])),
                             "hypervolume_val_accuracy_mean": float(np.mean([r["hypervolume_val_accuracy"] for r in mine])),
                             **{f"test_at_{k}": float(np.mean([r["picks"][k]["standalone_test"] for r in mine]))
                                for k in mine[0]["picks"]}}
    wins = sum(a["hypervolume"] > b["hypervolume"] for a, b in zip(runs[::2], runs[1::2]))
    ties = sum(a["hypervolume"] == b["hypervolume"] for a, b in zip(runs[::2], runs[1::2]))
    print("\nmean over seeds: " + "; ".join(
        f"{k}: hypervolume {v['hypervolume_mean']:.4f}, " + ", ".join(
            f"test of pick <= {float(lim):.0%} {v['test_at_' + lim]:.4f}" for lim in runs[0]["picks"])
        for k, v in summary.items()))
    seeds = [r["seed"] for r in runs[::2]]
    print(f"{default} has the larger hypervolume on {wins} of {len(seeds)} seeds ({ties} tied)")
    picks_vs = {}
    for lim in runs[0]["picks"]:
        diffs = [a["picks"][lim]["standalone_test"] - b["picks"][lim]["standalone_test"]
                 for a, b in zip(runs[::2], runs[1::2])]
        picks_vs[lim] = {"above": sum(d > 0 for d in diffs), "same_or_tied": sum(d == 0 for d in diffs),
                         "below": sum(d < 0 for d in diffs), "mean_difference": float(np.mean(diffs))}
        print(f"picks <= {float(lim):.0%} (stand-alone test, mean of {args.train_seeds} training seed(s)): {default} "
              f"above random on {picks_vs[lim]['above']}, equal on {picks_vs[lim]['same_or_tied']}, below on "
              f"{picks_vs[lim]['below']} of {len(diffs)} seeds; mean difference {100 * picks_vs[lim]['mean_difference']:+.2f} points")
    result = {"default": default, "score": acc, "seeds": seeds, "limits": limits, "largest_params": largest,
              "standalone_epochs": args.epochs, "train_seeds": args.train_seeds, "dataset_hash": data.dataset_hash,
              "runs": runs, "summary": summary, "default_hv_wins": wins, "ties": ties, "picks_vs_random": picks_vs,
              "reused_searches": [str(p) for p in args.reuse_searches] if args.reuse_searches else None,
              "overrides": args.overrides}
    if args.json:
        from nas.io import atomic_write_json

        atomic_write_json(args.json, result)
        print(f"wrote {args.json}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE override for the run")
    ap.add_argument("--reuse", action="store_true", help="use the outputs of the last run instead of running again")
    ap.add_argument("--subnets", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=20, help="stand-alone training epochs per subnet")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--compare", choices=["random"], default=None,
                    help="run the default search and random search on the last run's supernet (see compare_random)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--compare: search seeds")
    ap.add_argument("--limits", nargs="+", default=["0.25", "0.6"],
                    help="--compare: size limits, fractions of the largest subnet's params")
    ap.add_argument("--workers", type=int, default=2, help="processes for stand-alone training")
    ap.add_argument("--train-seeds", type=int, default=1,
                    help="--compare: stand-alone trainings (seeds) of each pick, averaged")
    ap.add_argument("--reuse-searches", type=Path, nargs="+", default=None,
                    help="--compare: take the searches and picks of these earlier --compare JSONs (same params, "
                         "different search seeds), train only the stand-alone seeds they lack")
    args = ap.parse_args()
    os.chdir(ROOT)
    from nas.config import load_config

    if args.train_seeds < 1:
        sys.exit("error: --train-seeds must be at least 1")
    if args.reuse_searches and not args.compare:
        sys.exit("error: --reuse-searches belongs to --compare random")
    if args.compare:
        return compare_random(args)

    cfg = load_config(args.params, args.overrides)
    process_wall = None
    if not args.reuse:
        print("running the pipeline (evonas run) ...", flush=True)
        process_wall = run_pipeline(args.params, args.overrides)
    metrics = json.loads(Path(cfg.selection.reports_dir, "metrics.json").read_text())
    search = json.loads(Path(cfg.search.out_dir, "summary.json").read_text())
    stage = metrics["stage_seconds"]
    work = sum(v for v in stage.values() if v)

    print("\n== stage wall time (seconds) ==")
    for k, v in stage.items():
        print(f"  {k:10s} {v:8.1f}")
    print(f"  {'sum':10s} {work:8.1f}")

    print("\n== orchestration vs evaluation ==")
    orch = None
    if process_wall is not None:
        orch = process_wall - work
        print(f"  evonas run process wall        {process_wall:8.1f} s")
        print(f"  stage work (sum of stages)     {work:8.1f} s")
        print(f"  orchestration + start-up       {orch:8.1f} s  ({100 * orch / process_wall:.0f}% of wall: "
              "Prefect API and flow/task runs, Dask cluster start, imports)")
    w = search["workers"]
    busy, ewall = search["evaluation_busy_seconds"], search["evaluation_wall_seconds"]
    print(f"  search: {search['n_evaluated']} evaluations on {w} Dask workers")
    print(f"    evaluation busy (sum over candidates)  {busy:8.1f} s")
    print(f"    evaluation wall x workers (capacity)   {ewall * w:8.1f} s  -> utilisation {busy / max(ewall * w, 1e-9):.0%}")
    print(f"    strategy (surrogate fit + inner NSGA-II) {search['strategy_seconds']:6.1f} s")
    print(f"    search stage other (cluster start, I/O) {search['seconds'] - ewall - search['strategy_seconds']:6.1f} s")

    print(f"\n== supernet ranking quality: {args.subnets} subnets by size, inherited vs stand-alone "
          f"({args.epochs} epochs from scratch) ==")
    from benchmarks.supernet_ranking import measure, print_report

    rq = measure(cfg, str(args.params), args.overrides, args.subnets, args.epochs, workers=args.workers)
    print_report(rq)
    print(f"\ntest accuracy {metrics['test_accuracy']} of the model chosen by validation, {metrics['n_pareto']} non-dominated, "
          f"hypervolume {metrics['hypervolume']:.4f}")

    if args.json:
        out = {"process_wall_seconds": process_wall, "stage_seconds": stage, "stage_work_seconds": work,
               "orchestration_seconds": orch, "search": {k: search[k] for k in (
                   "n_evaluated", "workers", "evaluation_busy_seconds", "evaluation_wall_seconds",
                   "strategy_seconds", "seconds")},
               "ranking": rq, "metrics": metrics}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

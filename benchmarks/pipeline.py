"""Benchmark of the default pipeline: where the time goes, and how well the supernet ranks.

Prints, from one invocation:
1. the wall time of each stage of a default ``evonas run`` (run here unless ``--reuse``);
2. orchestration time (Prefect ephemeral API, flow/task bookkeeping, Dask cluster start-up,
   process start and imports) against time spent doing the stages' work, and, inside search,
   the Dask evaluation wall time against the evaluation busy time (sum over candidates);
3. the rank correlation (Kendall tau, Spearman) between each of N sampled subnets' accuracy
   with inherited supernet weights (after BatchNorm recalibration) and its accuracy when
   trained stand-alone from scratch: the supernet's ranking quality.

Usage:  python benchmarks/pipeline.py [--params params.yaml] [--reuse] [--subnets 12]
                                      [--epochs 15] [--json benchmarks/results/pipeline.json]
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


def ranking_quality(cfg, n_subnets: int, epochs: int) -> dict:
    import torch
    from scipy.stats import kendalltau, spearmanr

    from nas.data import load_prepared
    from nas.genome import candidate_seed
    from nas.spaces.elastic_build import build_subnet, extract_subnet
    from nas.strategies.base import fresh_samples
    from nas.supernet import load_supernet
    from nas.training import accuracy, recalibrate_bn, train

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    bundle = load_supernet(cfg.supernet.out_dir)
    data = load_prepared(cfg.data.out_dir)
    space = bundle.space
    rng = np.random.default_rng([cfg.seed, 99])
    extremes = [space.largest(), space.smallest()]
    genomes = extremes + fresh_samples(space, rng, n_subnets - 2, extremes)
    def val_loss(model) -> float:
        model.eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(data.x_val))
            return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(data.y_val)))

    rows = []
    for i, g in enumerate(genomes):
        seed = candidate_seed(cfg.seed, g)
        sub = extract_subnet(bundle.net, g)
        recalibrate_bn(sub, data.x_train, cfg.evaluation.bn_batches, cfg.evaluation.batch_size,
                       np.random.default_rng(seed))
        inherited = accuracy(sub, data.x_val, data.y_val)
        inherited_loss = val_loss(sub)
        torch.manual_seed(seed)
        fresh = build_subnet(space, g, data.input_shape[0], data.num_classes)
        t0 = time.perf_counter()
        train(fresh, data.x_train, data.y_train, epochs, 0.05, 64, np.random.default_rng(seed))
        standalone = accuracy(fresh, data.x_val, data.y_val)
        rows.append({"candidate_id": g.key(), "architecture": space.describe(g), "inherited": inherited,
                     "standalone": standalone, "inherited_val_loss": inherited_loss,
                     "standalone_val_loss": val_loss(fresh), "train_seconds": time.perf_counter() - t0})
        print(f"  [{i + 1:2d}/{len(genomes)}] {space.describe(g):40s} inherited acc {inherited:.4f} "
              f"loss {inherited_loss:.4f} | stand-alone acc {standalone:.4f} loss {rows[-1]['standalone_val_loss']:.4f}",
              flush=True)

    def corr(key_a: str, key_b: str) -> dict:
        a = np.array([r[key_a] for r in rows])
        b = np.array([r[key_b] for r in rows])
        return {"kendall_tau": float(kendalltau(a, b).statistic), "spearman": float(spearmanr(a, b).statistic)}

    acc, loss = corr("inherited", "standalone"), corr("inherited_val_loss", "standalone_val_loss")
    return {"n_subnets": len(rows), "standalone_epochs": epochs, "n_val": int(len(data.y_val)),
            "kendall_tau": acc["kendall_tau"], "spearman": acc["spearman"], "loss_rank": loss, "subnets": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE override for the run")
    ap.add_argument("--reuse", action="store_true", help="use the outputs of the last run instead of running again")
    ap.add_argument("--subnets", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=15, help="stand-alone training epochs per subnet")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.chdir(ROOT)
    from nas.config import load_config

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

    print(f"\n== supernet ranking quality: {args.subnets} subnets, inherited vs stand-alone "
          f"({args.epochs} epochs from scratch) ==")
    rq = ranking_quality(cfg, args.subnets, args.epochs)
    print(f"  validation accuracy: Kendall tau {rq['kendall_tau']:.3f}   Spearman {rq['spearman']:.3f}")
    print(f"  validation loss:     Kendall tau {rq['loss_rank']['kendall_tau']:.3f}   "
          f"Spearman {rq['loss_rank']['spearman']:.3f}")
    accs = [r["standalone"] for r in rq["subnets"]]
    print(f"  (stand-alone accuracies span {min(accs):.4f}..{max(accs):.4f} on {rq['n_val']} validation images; "
          f"one image is {1 / rq['n_val']:.4f})")
    print(f"\nbest test accuracy {metrics['best_test_accuracy']}, {metrics['n_pareto']} non-dominated, "
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

"""Several independent WANN searches (lineages) of one task: which one to keep, chosen on validation.

Networks of one search are siblings of one lineage and tune alike (``wann_tune_several.py``);
independent searches (other ``seed`` values, same settings) differ more. This reads the reports of
finished runs, each made by ``benchmarks/wann.py --workdir RUN`` or ``evonas run`` in RUN, and keeps
the lineage whose reported network tunes best on **validation** (ties: the better validation
ensemble, then fewer connections, then the lower seeds). Test accuracy is printed for every lineage
and never chooses. Runs must be of one task, metric and search budget, each its own search: other
``search.seed`` values on one data split (the way to compare topologies alone), or other ``seed``
values, which also draw another split (then the lineages differ by their splits' luck too).

Usage:
  python benchmarks/wann_lineages.py RUN [RUN ...] [--json PATH]

RUN is a run folder holding exactly one ``reports/*/metrics.json`` of a WANN classification run, or
such a ``metrics.json`` itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RULE = ("the lineage whose reported network tunes best on validation (ties: better validation ensemble, "
        "fewer connections, lower seeds); test accuracy never chooses")


def metrics_file(run: Path) -> Path:
    """The run's ``metrics.json``: ``run`` itself, or the one under ``run/reports/*/``."""
    if run.is_file():
        return run
    found = sorted(run.glob("reports/*/metrics.json"))
    if len(found) != 1:
        raise ValueError(f"{run}: expected one reports/*/metrics.json, found {len(found)}")
    return found[0]


def reported_network(run: Path, params: Path, sets: list[str]) -> dict:
    """The reported network of a finished WANN classification run, ready to be tuned again: its
    config (``params`` with ``sets``, read inside ``run``, as the run was made), task, spec and genome,
    the seeds of its validation and test scoring, and its best shared weight on validation."""
    import os

    from nas.config import load_config
    from nas.genome import Genome
    from nas.wann.select import _split_seed, front_table, task_and_space, val_scores
    from nas.wann.tune import best_shared_weight

    metrics = json.loads(metrics_file(run).read_text())
    here = os.getcwd()
    os.chdir(run)
    try:
        cfg = load_config(str(Path(here, params)), sets)
        task, space = task_and_space(cfg)
        table, _ = front_table(cfg)
        _ = task.data  # read the prepared data while inside the run
    finally:
        os.chdir(here)
    row = table[table.candidate_id == metrics["reported_model"]].iloc[0]
    genome = Genome.from_json(row["genome"], space.name)
    spec = space.spec(genome)
    vs, ts = _split_seed(cfg.seed, genome, "val"), _split_seed(cfg.seed, genome, "test")
    w_best, _ = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, cfg.evaluation.wann.rollouts))
    return {"metrics": metrics, "cfg": cfg, "task": task, "spec": spec, "genome": genome,
            "val_seed": vs, "test_seed": ts, "w_best": w_best}


def lineage(metrics: dict, source: str) -> dict:
    """One lineage's figures: the reported network of a WANN classification run."""
    if metrics.get("task") != "classify" or metrics.get("metric") != "accuracy":
        raise ValueError(f"{source}: not a WANN classification run (task {metrics.get('task')!r}, "
                         f"metric {metrics.get('metric')!r})")
    chosen = [m for m in metrics.get("selected_models", []) if m.get("candidate_id") == metrics.get("reported_model")]
    if not chosen or "val" not in chosen[0].get("tuned_weights", {}):
        raise ValueError(f"{source}: no reported network with tuned weights scored on validation")
    m = chosen[0]
    return {"source": source, "seed": metrics["seed"], "search_seed": metrics.get("search_seed", metrics["seed"]),
            "n_evaluated": metrics["n_evaluated"],
            "candidate_id": m["candidate_id"], "connections": m["connections"],
            "val_ensemble": m["ensemble"]["val"], "test_ensemble": m["ensemble"]["test"],
            "val_tuned": m["tuned_weights"]["val"], "test_tuned": m["tuned_weights"]["mean"],
            "search_seconds": metrics.get("stage_seconds", {}).get("search")}


def choose(lineages: list[dict]) -> dict:
    """The kept lineage (see :data:`RULE`); refuses runs that are not comparable lineages."""
    if len(lineages) < 2:
        raise ValueError("give at least two runs")
    seeds = [(x["seed"], x["search_seed"]) for x in lineages]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"runs share their (seed, search_seed) {sorted(seeds)}: lineages must be separate searches")
    budgets = {x["n_evaluated"] for x in lineages}
    if len(budgets) != 1:
        raise ValueError(f"runs evaluated different numbers of networks ({sorted(budgets)}): not one budget")
    return max(lineages, key=lambda x: (x["val_tuned"], x["val_ensemble"], -x["connections"], -x["seed"],
                                        -x["search_seed"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from nas.io import atomic_write_json

    try:
        rows = []
        for run in args.runs:
            f = metrics_file(run)
            try:
                metrics = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"{f}: unreadable ({exc})") from None
            rows.append(lineage(metrics, str(f)))
        kept = choose(rows)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    rows.sort(key=lambda x: (x["seed"], x["search_seed"]))
    shared = len({x["seed"] for x in rows}) == 1
    print("one data split (the runs share their seed)" if shared else
          "each run its own data split (other seeds): the lineages differ by their splits too")
    print(f"{'seed':>4s} {'search':>6s} {'network':14s} {'conns':>5s} {'val ens':>7s} {'test ens':>8s} {'val tuned':>9s} "
          f"{'test tuned':>10s}")
    for x in rows:
        mark = "  <- kept" if x is kept else ""
        print(f"{x['seed']:4d} {x['search_seed']:6d} {x['candidate_id']:14s} {x['connections']:5d} {x['val_ensemble']:7.4f} "
              f"{x['test_ensemble']:8.4f} {x['val_tuned']:9.4f} {x['test_tuned']:10.4f}{mark}")
    test = [x["test_tuned"] for x in rows]
    print(f"\nkept on validation: seed {kept['seed']}, search seed {kept['search_seed']} ({kept['candidate_id']}), tuned weights val "
          f"{kept['val_tuned']:.4f}, test {kept['test_tuned']:.4f}; test over the {len(rows)} lineages "
          f"{min(test):.4f}-{max(test):.4f} (reported only)")
    if args.json:
        atomic_write_json(args.json, {"rule": RULE, "one_split": shared, "kept": kept, "lineages": rows})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""Weight-agnostic networks against fixed topologies, one task per invocation (issue 18).

Runs the real pipeline (``evonas run --params examples/wann_<task>.yaml``: a Prefect flow, every
candidate scored on Dask at the shared weights, the select stage choosing on validation, tuning and
testing), then builds the baselines with the **same connection count** as the reported network: a
fixed fully connected topology (inputs and bias -> one tanh hidden layer -> outputs, the hidden
width giving the closest count) scored at the same random shared weights, and the same topology
with its weights trained by the same tuner (Adam for classification, REINFORCE or CMA-ES for control, as
``evaluation.wann.tuner`` says) from a seeded random initialisation. Prints every figure side by side with the paper's; ``--json`` writes

    {TASK: {"wann_random_shared": {"mean", "std"}, "wann_ensemble" (classification),
            "wann_tuned_shared", "wann_tuned_weights", "fixed_random_shared": {"mean", "std"},
            "fixed_trained", "connections", "evaluations", "seconds", ...}}

Accuracies are fractions, returns are returns; every figure is on the test split (classification)
or on test rollouts whose seeds neither the search nor the selection used (control).

    .venv/bin/python benchmarks/wann.py --task digits --json benchmarks/results/wann_digits.json
    .venv/bin/python benchmarks/wann.py --task swingup --set search.generations=200 --json ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXAMPLES = {"digits": "examples/wann_digits.yaml", "swingup": "examples/wann_swingup.yaml",
            "biped": "examples/wann_biped.yaml"}
PAPER = {  # Gaier & Ha 2019, Table 1 / Figure 5 (mean over 100 rollouts for control)
    "swingup": {"wann_random_shared": "515 ± 58", "wann_tuned_shared": "723 ± 16", "wann_tuned_weights": "932 ± 6",
                "fixed_trained": "918 ± 7"},
    "biped": {"wann_random_shared": "51 ± 108", "wann_tuned_shared": "261 ± 58", "wann_tuned_weights": "332 ± 1",
              "fixed_trained": "347 ± 1"},
    "digits": {"wann_random_shared": "MNIST: 82.0 % ± 18.7", "wann_ensemble": "MNIST: 91.6 %",
               "wann_tuned_shared": "MNIST: 91.9 %", "wann_tuned_weights": "MNIST: 94.2 %"},
}


def fixed_topology(n_in: int, n_out: int, connections: int) -> dict:
    """Inputs and bias fully connected to ``h`` tanh units, those fully connected to the outputs,
    ``h`` chosen so the connection count is closest to ``connections`` (at least one unit)."""
    per_unit = n_in + 1 + n_out
    h = max(1, int(round(connections / per_unit)))
    first = n_in + 1 + n_out
    hidden = [[first + j, "tanh"] for j in range(h)]
    conns = [[s, first + j] for j in range(h) for s in range(n_in + 1)] + \
            [[first + j, n_in + 1 + o] for j in range(h) for o in range(n_out)]
    return {"inputs": n_in, "outputs": n_out, "out_act": "linear", "hidden": hidden, "conns": sorted(conns)}


def baselines(cfg, spec: dict, seed: int) -> dict:
    """The fixed topology at the shared weights, and trained."""
    from nas.genome import Genome, canonical_json
    from nas.wann.select import _split_seed, scores, tune_selected_classifier, val_scores
    from nas.wann.tasks import make_task
    from nas.wann.tune import best_shared_weight, policy_returns, tune_control

    ev = cfg.evaluation.wann
    task = make_task(ev, cfg.data.out_dir)
    g = Genome((), "wann", canonical_json(spec))
    vs, ts = _split_seed(cfg.seed, g, "val"), _split_seed(cfg.seed, g, "test")
    control = task.kind != "classify"
    shared = np.array(ev.weights)
    at = scores(task, spec, shared, "test", ts, ev.test_rollouts if control else None)
    out = {"fixed_connections": len(spec["conns"]), "fixed_hidden": len(spec["hidden"]),
           "fixed_random_shared": {"mean": float(np.mean(at)), "std": float(np.std(at))}}

    w0, _ = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, ev.rollouts))
    out["fixed_best_shared_weight"] = w0
    # trained weights start from a seeded random initialisation (1/sqrt(fan-in) scale): a shared
    # start would leave every hidden unit of a fully connected layer identical for ever
    fan_in: dict[int, int] = {}
    for _, d in spec["conns"]:
        fan_in[d] = fan_in.get(d, 0) + 1
    rng = np.random.default_rng(seed)
    init = np.array([rng.normal() / np.sqrt(fan_in[d]) for _, d in spec["conns"]])
    if control:
        tuned = tune_control(task, spec, init, ev, seed, val_seed=vs)
        r = policy_returns(task, spec, tuned, ts, ev.test_rollouts)
        out["fixed_trained"] = {"mean": float(r.mean()), "std": float(r.std())}
    else:
        tuned = tune_selected_classifier(task, spec, init, ev, seed)  # the select stage's tuner, from init
        out["fixed_trained"] = float(scores(task, spec, tuned[None, :], "test", ts)[0])
    return out


def holdout(cfg, card: dict, rollouts: int) -> dict:
    """The reported network's figures on ``rollouts`` episodes whose seeds (label ``holdout``)
    neither the search, the selection, the tuning nor the test rollouts used."""
    from nas.genome import Genome, canonical_json
    from nas.wann.select import _split_seed, scores
    from nas.wann.tasks import make_task
    from nas.wann.tune import policy_returns

    task = make_task(cfg.evaluation.wann, cfg.data.out_dir)
    spec = card["genome"]
    hs = _split_seed(cfg.seed, Genome((), "wann", canonical_json(spec)), "holdout")
    rand = scores(task, spec, np.array(cfg.evaluation.wann.weights), "test", hs, rollouts)
    shared = scores(task, spec, np.array([card["best_shared_weight"]]), "test", hs, rollouts)[0]
    tuned = policy_returns(task, spec, np.array(card["tuned_weight_values"]), hs, rollouts)
    return {"rollouts": rollouts, **{k: {"mean": float(v.mean()), "std": float(v.std())} for k, v in
                                     (("wann_random_shared", rand), ("wann_tuned_shared", shared),
                                      ("wann_tuned_weights", tuned))}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=sorted(EXAMPLES), required=True)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override KEY=VALUE (as evonas run)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the run writes (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures as {TASK: {...}}")
    ap.add_argument("--holdout", type=int, default=0, help="control: also score the reported network on this many "
                    "rollouts of a seed set no step used (an unbiased check when settings were compared on test)")
    ap.add_argument("--reuse-run", action="store_true", help="do not run the pipeline: read the finished run in "
                    "--workdir (same --set values) and compute the baselines")
    args = ap.parse_args()

    from nas.config import load_config
    from nas.io import atomic_write_json

    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"wann_{args.task}_"))
    work.mkdir(parents=True, exist_ok=True)
    params = ROOT / EXAMPLES[args.task]
    exe = str(Path(sys.executable).parent / "evonas")
    t0 = time.perf_counter()
    cmd = [exe, "run", "--params", str(params), "--fresh", *[a for s in args.sets for a in ("--set", s)]]
    print("$", " ".join(cmd), f"(in {work})", flush=True)
    env = {**os.environ, "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(ROOT / ".prefect"))}
    if args.reuse_run:
        if args.workdir is None:
            sys.exit("--reuse-run needs --workdir (the folder of the finished run)")
        print("(reusing the finished run in the workdir)")
    else:
        proc = subprocess.run(cmd, cwd=work, env=env, text=True, capture_output=True)
        if proc.returncode != 0:
            sys.exit(f"evonas run failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    search_seconds = time.perf_counter() - t0
    cwd = os.getcwd()
    os.chdir(work)  # the params' relative out_dirs
    try:
        cfg = load_config(params, args.sets)
        metrics = json.loads((Path(cfg.selection.reports_dir) / "metrics.json").read_text())
        best = next(m for m in metrics["selected_models"] if m["candidate_id"] == metrics["reported_model"])
        card = json.loads((Path(cfg.selection.out_dir) / "models" / f"{best['candidate_id']}.json").read_text())
        from nas.genome import Genome, canonical_json, candidate_seed

        spec = card["genome"]
        fixed = fixed_topology(spec["inputs"], spec["outputs"], len(spec["conns"]))
        base = baselines(cfg, fixed, candidate_seed(cfg.seed, Genome((), "wann", canonical_json(fixed))))
        if args.holdout and card["metric"] == "return":
            base["holdout"] = holdout(cfg, card, args.holdout)
    finally:
        os.chdir(cwd)
    control = metrics["metric"] == "return"
    row = {"task": cfg.evaluation.wann.task, "metric": metrics["metric"], "reported_model": best["candidate_id"],
           "wann_random_shared": {"mean": best["random_shared"]["mean"], "std": best["random_shared"]["std"]},
           "wann_tuned_shared": best["tuned_shared"]["mean"] if not control else best["tuned_shared"],
           "wann_tuned_weights": best["tuned_weights"]["mean"] if not control else
           {k: best["tuned_weights"][k] for k in ("mean", "std")},
           "best_shared_weight": best["best_shared_weight"], "connections": best["connections"],
           "hidden_nodes": card["hidden_nodes"], **base,
           "evaluations": metrics["n_evaluated"], "search_seconds": metrics["stage_seconds"]["search"],
           "seconds": sum(v for v in metrics["stage_seconds"].values() if v) if args.reuse_run
           else time.perf_counter() - t0, "pipeline_seconds": None if args.reuse_run else search_seconds,
           "command": " ".join(["benchmarks/wann.py", "--task", args.task, *[f"--set {s}" for s in args.sets]]),
           "params": EXAMPLES[args.task]}
    if "ensemble" in best:
        row["wann_ensemble"] = best["ensemble"]["test"]

    def fmt(v) -> str:
        if isinstance(v, dict):
            return f"{v['mean']:.4g} ± {v['std']:.3g}"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    paper = PAPER.get(args.task, {})
    print(f"\nWANN on {args.task}: {row['evaluations']} networks scored, {row['connections']} connections "
          f"({row['hidden_nodes']} hidden); fixed topology {row['fixed_connections']} connections "
          f"({row['fixed_hidden']} tanh hidden); {row['seconds']:.0f} s")
    print(f"{'figure':<24} {'ours':>20}   paper")
    for k in ("wann_random_shared", "wann_ensemble", "wann_tuned_shared", "wann_tuned_weights",
              "fixed_random_shared", "fixed_trained"):
        if k in row:
            print(f"{k:<24} {fmt(row[k]):>20}   {paper.get(k, '')}")
    if "holdout" in row:
        h = row["holdout"]
        print(f"held-out rollouts ({h['rollouts']}): " + ", ".join(f"{k} {fmt(h[k])}" for k in
                                                                  ("wann_random_shared", "wann_tuned_shared",
                                                                   "wann_tuned_weights")))
    if args.json:
        atomic_write_json(args.json, {args.task: row})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

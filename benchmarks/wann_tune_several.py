"""Does tuning several networks of a finished WANN classification search, and keeping the one
that tunes best on validation, beat tuning the one network the select stage reports?

Reads a finished run (run it from the folder the run was made in, with the same ``--params``
and ``--set`` values). Of the ``4 K`` networks with the best search score (``mean_score`` or
``ensemble_score``, what the search ranked on),
the ``K`` best by mean validation accuracy over the shared weights are each tuned exactly as the
select stage tunes (best shared weight chosen on validation, then ``evaluation.wann.tune_steps``
Adam steps with the validation-kept iterate). Prints, per network: validation and test accuracy
at the best shared weight, of the weights' ensemble and after tuning; then the network the select
stage's ``best_accuracy`` rule would report (the best validation accuracy at the shared weights)
against the one with the best tuned validation accuracy. Validation chooses; test is only reported.

``--variants`` also tunes each network with other recipes and prints their training, validation and
test accuracy beside the select stage's: a straight-through gradient for the ``step`` activation (its
true gradient is zero, so tuning cannot move the weights feeding it), five times the steps at a fifth of
the learning rate, and decoupled weight decay. The recipe with the best mean validation accuracy is
named; test is only reported.

Usage (classification tasks only):
  cd RUN && python benchmarks/wann_tune_several.py --params examples/wann_digits.yaml \\
      [--set KEY=VALUE ...] [--k 8] [--variants] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, default=ROOT / "examples/wann_digits.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--k", type=int, default=8, help="networks to tune (default 8)")
    ap.add_argument("--variants", action="store_true", help="also tune with other recipes (see above)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.k < 1:
        sys.exit("error: --k must be at least 1")

    from nas.config import load_config
    from nas.genome import Genome, candidate_seed
    from nas.io import atomic_write_json
    from nas.wann.network import compile_plan
    from nas.wann.select import (_split_seed, front_table, scores, search_score, task_and_space,
                                  tune_selected_classifier, val_scores)
    from nas.wann.tasks import ensemble_accuracy
    from nas.wann.tune import best_shared_weight

    t0 = time.perf_counter()
    cfg = load_config(args.params, args.sets)
    task, space = task_and_space(cfg)
    if task.kind != "classify":
        sys.exit(f"error: task '{cfg.evaluation.wann.task}' is not a classification task")
    all_df, _ = front_table(cfg)  # fails with a clear message when the run has no scored network
    ok = all_df[all_df.status == "ok"].sort_values(search_score(cfg), ascending=False).head(4 * args.k)
    ev = cfg.evaluation.wann
    shared = np.array(ev.weights)
    pool = []
    for r in ok.to_dict("records"):
        g = Genome.from_json(r["genome"], space.name)
        spec = space.spec(g)
        pool.append((float(np.mean(scores(task, spec, shared, "val", _split_seed(cfg.seed, g, "val")))), r, g, spec))
    pool.sort(key=lambda t: (-t[0], len(t[3]["conns"]), t[1]["candidate_id"]))
    xv, yv = task.split("val")
    xt, yt = task.split("test")
    rows = []
    print(f"{'network':14s} {'conns':>5s} {'val shared':>10s} {'w':>5s} {'val best w':>10s} {'test best w':>11s} "
          f"{'val ens':>7s} {'test ens':>8s} {'val tuned':>9s} {'test tuned':>10s}")
    for v, r, g, spec in pool[:args.k]:
        vs, ts = _split_seed(cfg.seed, g, "val"), _split_seed(cfg.seed, g, "test")
        # the select stage's own steps (nas/wann/select.py: finalize)
        wb, vb = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, ev.rollouts))
        tuned = tune_selected_classifier(task, spec, wb, ev, candidate_seed(cfg.seed, g))
        plan = compile_plan(spec)
        row = {"candidate_id": r["candidate_id"], "connections": len(spec["conns"]), "val_mean_shared": v,
               "best_shared_weight": wb, "val_best_shared": vb,
               "test_best_shared": float(scores(task, spec, np.array([wb]), "test", ts)[0]),
               "val_ensemble": ensemble_accuracy(plan, xv, yv, shared),
               "test_ensemble": ensemble_accuracy(plan, xt, yt, shared),
               "val_tuned": float(scores(task, spec, tuned[None, :], "val", vs)[0]),
               "test_tuned": float(scores(task, spec, tuned[None, :], "test", ts)[0])}
        rows.append(row)
        print(f"{row['candidate_id']:14s} {row['connections']:5d} {v:10.4f} {wb:5.2f} {vb:10.4f} "
              f"{row['test_best_shared']:11.4f} {row['val_ensemble']:7.4f} {row['test_ensemble']:8.4f} "
              f"{row['val_tuned']:9.4f} {row['test_tuned']:10.4f}", flush=True)
        if args.variants:
            row["variants"] = {}
            for name, kw in VARIANTS.items():
                w = tune_variant(spec, task, wb, ev, candidate_seed(cfg.seed, g), **kw)
                row["variants"][name] = {s: float(scores(task, spec, w[None, :], s, vs if s == "val" else ts)[0])
                                         for s in ("train", "val", "test")}
                print(f"    {name:24s} train {row['variants'][name]['train']:.4f} val {row['variants'][name]['val']:.4f}"
                      f" test {row['variants'][name]['test']:.4f}", flush=True)
    # the select stage's best_accuracy rule: best validation at the best shared weight, ties to fewer connections
    one = max(rows, key=lambda d: (d["val_best_shared"], -d["connections"]))
    several = max(rows, key=lambda d: (d["val_tuned"], -d["connections"]))
    print(f"\ntuning the network best_accuracy reports ({one['candidate_id']}): val {one['val_tuned']:.4f}, "
          f"test {one['test_tuned']:.4f}")
    print(f"tuning {len(rows)}, keeping the best on validation ({several['candidate_id']}): val "
          f"{several['val_tuned']:.4f}, test {several['test_tuned']:.4f}")
    test = [d["test_tuned"] for d in rows]
    print(f"test accuracy after tuning over the {len(rows)}: min {min(test):.4f}, max {max(test):.4f} (reported only)")
    summary = {}
    if args.variants:
        print(f"\n{'recipe (mean over the ' + str(len(rows)) + ')':30s} {'train':>7s} {'val':>7s} {'test':>7s}")
        for name in VARIANTS:
            summary[name] = {s: float(np.mean([d["variants"][name][s] for d in rows])) for s in ("train", "val", "test")}
            print(f"{name:30s} {summary[name]['train']:7.4f} {summary[name]['val']:7.4f} {summary[name]['test']:7.4f}")
        pick = max(summary, key=lambda n: summary[n]["val"])
        print(f"best recipe on validation: {pick} (test {summary[pick]['test']:.4f}, reported only)")
    if args.json:
        atomic_write_json(args.json, {"k": len(rows), "variants_mean": summary, "one": one, "several": several, "networks": rows,
                                      "params": str(args.params), "sets": args.sets,
                                      "seconds": time.perf_counter() - t0})
        print(f"wrote {args.json}")


VARIANTS = {
    "select stage (Adam)": {},
    "straight-through step": {"straight_through": 4.0},
    "5x steps, lr / 5": {"steps_factor": 5, "lr_factor": 0.2},
    "weight decay 0.01": {"weight_decay": 0.01},
}
"""Tuning recipes of ``--variants``; the first is the select stage's own (``evaluation.wann``)."""


def tune_variant(spec: dict, task, w0: float, ev, seed: int, straight_through: float | None = None,
                 steps_factor: int = 1, lr_factor: float = 1.0, weight_decay: float | None = None) -> np.ndarray:
    """The select stage's tuning (``nas.wann.tune.tune_classifier``: full-batch Adam on the training
    images, the iterate best on validation kept), changed by one recipe. ``straight_through`` = k:
    the ``step`` activation keeps its forward value and takes the gradient of sigmoid(k x)."""
    import torch

    from nas.wann import tune as tune_mod

    x, y = task.split("train")
    kw = {"val": task.split("val"), "val_every": ev.tune_val_every,
          "weight_decay": ev.tune_weight_decay if weight_decay is None else weight_decay,
          "input_noise": ev.tune_input_noise}
    steps, lr = ev.tune_steps * steps_factor, ev.tune_lr * lr_factor
    if straight_through is None:
        return tune_mod.tune_classifier(spec, x, y, w0, steps, lr, seed, **kw)
    k = straight_through
    real = tune_mod.WannNet

    class _StraightThrough(real):
        def __init__(self, *a, **kws):
            super().__init__(*a, **kws)
            for i, (lv, names) in enumerate(zip(self._tp.levels, self.plan.levels)):
                acts = [((lambda z: (z > 0).to(z.dtype) + torch.sigmoid(k * z) - torch.sigmoid(k * z).detach())
                         if name == "step" else f, mask) for (f, mask), (name, _) in zip(lv[4], names.acts)]
                self._tp.levels[i] = (*lv[:4], acts)

    tune_mod.WannNet = _StraightThrough
    try:
        return tune_mod.tune_classifier(spec, x, y, w0, steps, lr, seed, **kw)
    finally:
        tune_mod.WannNet = real


if __name__ == "__main__":
    main()

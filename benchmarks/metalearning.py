"""Meta-learned components against their baselines, where found and transferred (issue 19).

1. Runs the three searches with the real pipeline on ``--found-on`` data (``evonas run --params
   examples/meta_<component>.yaml``: Prefect flows, candidates on Dask, the select stage choosing
   on validation), or reuses the component files of an earlier run (``--reuse``).
2. On ``--found-on`` and on ``--other`` data, trains the same fixed network (``evaluation.meta``)
   with each found component and with its baseline (ReLU / cross-entropy / no augmentation, and
   for augmentation also the hand-made shift + rotate policy) on ``--seeds`` seeds, the same seeds
   for every arm and none of them used by the search or its select stage, and tests each.
3. Prints test accuracy mean ± std and the paired t-test p-value side by side; ``--json`` writes

    {"found_on": DATASET, "other": DATASET, "components": {COMPONENT: TEXT},
     DATASET: {COMPONENT: {"baseline": {"mean", "std", "n"}, "found": {"mean", "std", "n"},
                           "p_value", "p_value_vs_tuned_lr_baseline", "hand_made": {...} (augmentation)}},
     "baseline_tuned_lr": {DATASET: {"mean", "std", "n", "lr"}}, "seconds"}

   The baseline is also trained at its own best learning rate (of 0.1, 0.2, 0.4, 0.8, 1.6, chosen on
   validation with seeds of its own), so that a component cannot win only by changing the step
   size (a loss's scale and an activation's slope both act like one).

    .venv/bin/python benchmarks/metalearning.py --json benchmarks/results/metalearning.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMPONENTS = ("activation", "loss", "augmentation")
DATA_SETS = {"omniglot_pooled": [], "digits": ["data.image_size=null"]}


def run_search(comp: str, data: str, workdir: Path, sets: list[str]) -> Path:
    out = workdir / f"artifacts/meta_{comp}/select/{comp}.json"
    args = [str(ROOT / ".venv/bin/evonas"), "run", "--params", str(ROOT / f"examples/meta_{comp}.yaml"),
            "--set", f"data.kind={data}", *[a for s in DATA_SETS[data] + sets for a in ("--set", s)]]
    env = {**os.environ, "PREFECT_HOME": str(workdir / ".prefect")}
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the {comp} search failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if " found: " in ln]
    print(f"{comp} search: {time.perf_counter() - t0:.0f} s; {said[-1] if said else ''}", flush=True)
    return out


def prepare(data: str, workdir: Path):
    from nas import stages
    from nas.config import load_config
    from nas.data import load_prepared

    cfg = load_config(ROOT / "examples/meta_activation.yaml",
                      [f"data.kind={data}", f"data.out_dir={workdir}/data/bench_{data}", *DATA_SETS[data]])
    if not (Path(cfg.data.out_dir) / "data.npz").is_file():
        stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    return cfg, load_prepared(cfg.data.out_dir)


def _job(args) -> float:
    """One training of the fixed network (a worker process, one torch thread); test accuracy
    (validation accuracy when ``sets`` ends with ``split=val``)."""
    import torch

    from nas.meta.components import fixed_activation
    from nas.meta.network import train_fixed
    from nas.training import accuracy

    from nas.training import DivergedError

    torch.set_num_threads(1)
    cfg_path, sets, comp, value, seed = args
    from nas.config import load_config
    from nas.data import load_prepared

    split = "val" if sets and sets[-1] == "split=val" else "test"
    cfg = load_config(cfg_path, [s for s in sets if s != "split=val"])
    data = load_prepared(cfg.data.out_dir)
    x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    try:
        net = train_fixed(comp, value, data, seed, cfg.evaluation.meta, fixed_activation(cfg))
    except DivergedError:  # a diverged training predicts nothing: scored as always answering one class
        return -float(np.mean(y == np.bincount(y).argmax()))  # negative marks it (counted, then made positive)
    return float(accuracy(net, x, y))


LR_GRID = (0.1, 0.2, 0.4, 0.8, 1.6)


def stats(v) -> dict:
    """Mean, std and values of accuracies; a negative entry is a diverged training scored at the
    majority-class accuracy (``diverged`` counts them)."""
    v = np.asarray(v, float)
    diverged = int((v < 0).sum())
    v = np.abs(v)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v)),
            "diverged": diverged, "values": [float(x) for x in v]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--found-on", default="omniglot_pooled", choices=sorted(DATA_SETS))
    ap.add_argument("--other", default="digits", choices=sorted(DATA_SETS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workdir", default="scratch/metalearning")
    ap.add_argument("--reuse", action="store_true", help="use the component files already in --workdir")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for the searches (e.g. search.generations=10)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--components", default=",".join(COMPONENTS),
                    help="comma-separated subset of activation, loss, augmentation")
    ap.add_argument("--versus-augmentation", default=None, metavar="PATH",
                    help="an augmentation.json to test as one more arm, paired against the found one (e.g. a "
                         "single policy against a found schedule)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    comps = [c for c in a.components.split(",") if c]
    if not comps or any(c not in COMPONENTS for c in comps):
        ap.error(f"--components takes a subset of {', '.join(COMPONENTS)}, got {a.components!r}")
    t0 = time.perf_counter()
    work = Path(a.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)

    from nas.meta.augment import HAND_MADE
    from nas.meta.components import describe, load_file
    from nas.meta.select import paired_p, stream_seed

    versus = load_file(a.versus_augmentation, "augmentation") if a.versus_augmentation else None
    found = {}
    for comp in comps:
        path = work / f"artifacts/meta_{comp}/select/{comp}.json"
        if not (a.reuse and path.is_file()):
            path = run_search(comp, a.found_on, work, a.set)
        found[comp] = load_file(path, comp)
        print(f"found {comp}: {describe(comp, found[comp])}", flush=True)

    seeds = [stream_seed(0, "benchmark", k) for k in range(a.seeds)]  # apart from search and select seeds
    out: dict = {"found_on": a.found_on, "other": a.other,
                 "components": {c: describe(c, v) for c, v in found.items()}, "seeds": a.seeds}
    for data in (a.found_on, a.other):
        cfg, _ = prepare(data, work)
        sets = [f"data.kind={data}", f"data.out_dir={cfg.data.out_dir}", *DATA_SETS[data]]
        arms = []
        for comp in comps:
            arms += [(comp, "baseline", None), (comp, "found", found[comp])]
            if comp == "augmentation":
                arms.append((comp, "hand_made", {"policy": HAND_MADE}))
                if versus is not None:
                    arms.append((comp, "versus", versus))
        jobs = [(str(ROOT / "examples/meta_activation.yaml"), sets, comp, value, s)
                for comp, _, value in arms for s in seeds]
        # the baseline at its own best learning rate (chosen on validation, 3 seeds of their own):
        # so that no component wins only because the default step size suits it better
        lr_seeds = [stream_seed(0, "benchmark-lr", k) for k in range(3)]
        lr_jobs = [(str(ROOT / "examples/meta_activation.yaml"), [*sets, f"evaluation.meta.lr={lr}", "split=val"],
                    "loss", None, s) for lr in LR_GRID for s in lr_seeds]
        with ProcessPoolExecutor(a.workers) as pool:
            accs = list(pool.map(_job, jobs))
            lr_val = np.abs(np.array(list(pool.map(_job, lr_jobs)))).reshape(len(LR_GRID), len(lr_seeds)).mean(1)
            best_lr = LR_GRID[int(np.argmax(lr_val))]
            tuned = list(np.abs(list(pool.map(_job, [(str(ROOT / "examples/meta_activation.yaml"),
                                                      [*sets, f"evaluation.meta.lr={best_lr}"], "loss", None, s)
                                                     for s in seeds]))))
        res: dict = {}
        for i, (comp, arm, _) in enumerate(arms):
            res.setdefault(comp, {})[arm] = stats(accs[i * len(seeds):(i + 1) * len(seeds)])
        out.setdefault("baseline_tuned_lr", {})[data] = {
            **stats(tuned), "lr": best_lr, "val_by_lr": {str(lr): float(v) for lr, v in zip(LR_GRID, lr_val)}}
        for comp, r in res.items():
            r["p_value"] = paired_p(r["found"]["values"], r["baseline"]["values"])
            r["p_value_vs_tuned_lr_baseline"] = paired_p(r["found"]["values"], tuned)
            if "hand_made" in r:
                r["p_value_vs_hand_made"] = paired_p(r["found"]["values"], r["hand_made"]["values"])
            if "versus" in r:
                r["p_value_vs_versus"] = paired_p(r["found"]["values"], r["versus"]["values"])
                r["versus_text"] = describe("augmentation", versus)
        out[data] = res
        print(f"\n{data} ({'found here' if data == a.found_on else 'transfer'}), test accuracy over {a.seeds} seeds:")
        bt = out["baseline_tuned_lr"][data]
        print(f"baseline (ReLU, cross-entropy, no augmentation) at its best learning rate on validation "
              f"({bt['lr']}, of {list(LR_GRID)}): test {bt['mean']:.4f} ± {bt['std']:.4f}")
        print(f"{'component':<14}{'baseline':>18}{'found':>18}{'p (paired)':>12}{'p vs best-lr':>14}   found")
        for comp, r in res.items():
            b, f = r["baseline"], r["found"]
            p = "n/a" if r["p_value"] is None else f"{r['p_value']:.3g}"
            pt = r["p_value_vs_tuned_lr_baseline"]
            pt = "n/a" if pt is None else f"{pt:.3g}"
            print(f"{comp:<14}{b['mean']:>10.4f} ± {b['std']:.4f}{f['mean']:>10.4f} ± {f['std']:.4f}{p:>12}{pt:>14}   "
                  f"{out['components'][comp]}" + (f" ({f['diverged']} of {f['n']} trainings diverged)" if f["diverged"] else ""))
            if "hand_made" in r:
                h = r["hand_made"]
                ph = "n/a" if r["p_value_vs_hand_made"] is None else f"{r['p_value_vs_hand_made']:.3g}"
                print(f"{'  hand-made':<14}{h['mean']:>10.4f} ± {h['std']:.4f}{'':>18}{ph:>12}   "
                      f"(found vs hand-made)")
            if "versus" in r:
                v = r["versus"]
                pv = "n/a" if r["p_value_vs_versus"] is None else f"{r['p_value_vs_versus']:.3g}"
                print(f"{'  versus':<14}{v['mean']:>10.4f} ± {v['std']:.4f}{'':>18}{pv:>12}   "
                      f"(found vs {r['versus_text']})")
    out["seconds"] = time.perf_counter() - t0
    wins = [c for c in comps if out[a.found_on][c]["p_value"] is not None and out[a.found_on][c]["p_value"] < 0.05
            and out[a.found_on][c]["found"]["mean"] > out[a.found_on][c]["baseline"]["mean"]]
    print(f"\ncomponents beating their baseline with p < 0.05 on {a.found_on}: {len(wins)} of {len(comps)} {wins} "
          "(target: 2 of 3); "
          f"{out['seconds']:.0f} s")
    if a.json:
        from nas.io import atomic_write_json

        atomic_write_json(a.json, out)


if __name__ == "__main__":
    main()

"""The select stage of a meta-learning search: choose the component on validation, report it on test.

1. The ``evaluation.meta.select_top`` candidates with the best search validation accuracy are
   retrained with ``select_seeds`` fresh seeds each; the one with the best mean validation
   accuracy over those seeds is chosen (a search's best single score is biased upward by the
   search itself: among many noisy scores the maximum is lucky).
2. The chosen component and the baseline (ReLU / the fixed network's activation, cross-entropy,
   no augmentation) are trained with ``test_seeds`` further seeds, the same seeds for both, and
   tested: mean and std of test accuracy and a paired t-test. The test split chooses nothing.
3. ``<selection.out_dir>/<component>.json`` holds the component for every later training
   (``space.activation``, ``evaluation.loss``, ``evaluation.augmentation``); ``metrics.json`` and
   ``report.md`` under ``selection.reports_dir`` hold the figures.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nas.config import Config
from nas.io import atomic_write_json, atomic_write_text

REPORT_RULE = "best mean validation accuracy of the top search candidates over fresh seeds"


def stream_seed(base: int, stream: str, k: int) -> int:
    """Seeds of the select stage, apart from the search's candidate seeds: ``stream`` is
    ``select`` or ``test``."""
    d = hashlib.sha256(f"{base}:{stream}:{k}".encode()).digest()
    return int.from_bytes(d[:4], "little") & 0x7FFFFFFF


def _stats(v) -> dict:
    v = np.asarray(v, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v)),
            "values": [float(x) for x in v]}


def paired_p(a, b) -> float | None:
    """Two-sided paired t-test p-value (None when it is undefined: fewer than 2 pairs or no variation)."""
    from scipy.stats import ttest_rel

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.allclose(a - b, (a - b)[0]):
        return None
    return float(ttest_rel(a, b).pvalue)


def scores(cfg: Config, value: dict | None, seeds: list[int], split: str, data=None) -> list[float]:
    """Accuracy on ``split`` of the fixed network trained with ``value`` (None: the baseline),
    once per seed."""
    import torch

    from nas.meta.components import fixed_activation
    from nas.meta.network import train_fixed
    from nas.training import accuracy, resolve_device, torch_threads

    if data is None:
        from nas.data import load_prepared

        data = load_prepared(cfg.data.out_dir)
    device = resolve_device(cfg.evaluation.device)
    base = fixed_activation(cfg)
    out = []
    with torch_threads(), torch.random.fork_rng(devices=[]):
        for s in seeds:
            net = train_fixed(cfg.space.kind, value, data, s, cfg.evaluation.meta, base,
                              device)
            x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
            out.append(float(accuracy(net, x, y, device=device)))
    return out


def evaluated(cfg: Config) -> pd.DataFrame:
    from nas.runners import read_populations

    df = read_populations(Path(cfg.search.out_dir) / "populations").drop_duplicates("candidate_id")
    return df.reset_index(drop=True)


def select(cfg: Config, progress=None) -> dict:
    from nas.data import load_prepared
    from nas.meta.components import describe

    t0 = time.perf_counter()
    component, m = cfg.space.kind, cfg.evaluation.meta
    df = evaluated(cfg)
    ok = df[df.status == "ok"].sort_values(["val_accuracy", "candidate_id"], ascending=[False, True])
    if ok.empty:
        raise RuntimeError(f"no {component} candidate trained successfully: see the errors in "
                           f"{Path(cfg.search.out_dir) / 'populations'}")
    data = load_prepared(cfg.data.out_dir)
    say = progress or (lambda msg: None)
    sel_seeds = [stream_seed(cfg.seed, "select", k) for k in range(m.select_seeds)]
    rows = []
    for r in ok.head(m.select_top).to_dict("records"):
        value = json.loads(r["genome"])
        v = scores(cfg, value, sel_seeds, "val", data)
        rows.append({"candidate_id": r["candidate_id"], "value": value, "text": describe(component, value),
                     "search_val_accuracy": float(r["val_accuracy"]), "fresh_val": _stats(v)})
        say(f"select: {rows[-1]['text']}: fresh-seed validation {np.mean(v):.4f} (search {r['val_accuracy']:.4f})")
    base_val = scores(cfg, None, sel_seeds, "val", data)
    best = max(rows, key=lambda r: (r["fresh_val"]["mean"], r["search_val_accuracy"], r["candidate_id"]))
    test_seeds = [stream_seed(cfg.seed, "test", k) for k in range(m.test_seeds)]
    found_test = scores(cfg, best["value"], test_seeds, "test", data)
    base_test = scores(cfg, None, test_seeds, "test", data)
    say(f"select: test accuracy over {len(test_seeds)} seeds: found {np.mean(found_test):.4f}, baseline "
        f"{np.mean(base_test):.4f}")
    baseline_text = describe(component, None) if component != "activation" else cfg.evaluation.meta.activation
    result = {
        "component": component, "value": best["value"], "text": best["text"], "candidate_id": best["candidate_id"],
        "found_on": {"data": cfg.data.kind, "dataset_hash": data.dataset_hash, "seed": cfg.seed},
        "fixed_network": {"channels": list(m.channels), "activation": m.activation, "epochs": m.epochs, "lr": m.lr,
                          "batch_size": m.batch_size, "init": "autoinit"},
        "use_with": {"activation": "space.activation", "loss": "evaluation.loss",
                     "augmentation": "evaluation.augmentation"}[component],
        # validation only: the chosen component's fresh-seed mean against the baseline's, same seeds
        "beats_baseline_on_validation": bool(best["fresh_val"]["mean"] > float(np.mean(base_val))),
    }
    out = Path(cfg.selection.out_dir)
    atomic_write_json(out / f"{component}.json", result)
    atomic_write_text(out / "candidates.csv", ok.to_csv(index=False))
    table = pd.DataFrame([{"candidate_id": r["candidate_id"], "component": r["text"],
                           "genome": json.dumps(r["value"]), "val_accuracy": r["search_val_accuracy"],
                           "val_fresh_seeds": r["fresh_val"]["mean"], "selected": r is best,
                           "test_accuracy": float(np.mean(found_test)) if r is best else np.nan,
                           "selected_by": "best_fresh_validation" if r is best else ""} for r in rows])
    atomic_write_text(out / "pareto.csv", table.to_csv(index=False))  # the candidates select looked at
    summary = json.loads((Path(cfg.search.out_dir) / "summary.json").read_text())
    metrics = {
        "component": component, "found": best["text"], "found_file": str(out / f"{component}.json"),
        "use_with": result["use_with"],
        "baseline": baseline_text, "report_rule": REPORT_RULE, "reported_model": best["candidate_id"],
        "n_evaluated": int(len(df)), "n_failed": int((df.status != "ok").sum()),
        "failures": summary.get("failures", {}), "resumed_from_generation": summary.get("resumed_from_generation"),
        "best_search_val_accuracy": float(ok.val_accuracy.iloc[0]),
        "beats_baseline_on_validation": result["beats_baseline_on_validation"],
        "select_candidates": [{k: r[k] for k in ("candidate_id", "text", "search_val_accuracy", "fresh_val")}
                              for r in rows],
        "baseline_fresh_val": _stats(base_val),
        "test": {"found": _stats(found_test), "baseline": _stats(base_test),
                 "p_value": paired_p(found_test, base_test), "seeds": len(test_seeds)},
        "stage_seconds": {"search": summary["seconds"], "select": time.perf_counter() - t0},
        **cfg.run_identity(),
    }
    metrics["test_accuracy"] = metrics["test"]["found"]["mean"]
    metrics["headline"] = headline(metrics)
    reports = Path(cfg.selection.reports_dir)
    plot(reports / "pareto.png", df, metrics)
    atomic_write_json(reports / "metrics.json", metrics)
    atomic_write_text(reports / "report.md", report_md(metrics))
    return metrics


def plot(path: Path, df: pd.DataFrame, m: dict) -> Path:
    """Left: every candidate's search validation accuracy in evaluation order (failed ones at
    the bottom), the best so far as a line. Right: test accuracy of the found component and the
    baseline on each test seed (paired). Named ``pareto.png`` like every run's main plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.io import atomic_write_with

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    acc = df.val_accuracy.where(df.status == "ok").to_numpy(dtype=float)
    x = np.arange(1, len(acc) + 1)
    a.scatter(x, np.nan_to_num(acc, nan=0.0), s=12, c=np.where(np.isnan(acc), "tab:red", "tab:blue"))
    a.plot(x, np.fmax.accumulate(np.nan_to_num(acc, nan=0.0)), color="black", lw=1, label="best so far")
    a.set(xlabel="evaluation", ylabel="validation accuracy", title=f"{m['component']} search")
    a.legend(loc="lower right")
    t = m["test"]
    for k, (vals, name) in enumerate(((t["baseline"]["values"], m["baseline"]), (t["found"]["values"], "found"))):
        b.scatter(np.full(len(vals), k), vals, s=16)
        b.hlines(np.mean(vals), k - 0.2, k + 0.2, color="black")
    for v0, v1 in zip(t["baseline"]["values"], t["found"]["values"]):
        b.plot([0, 1], [v0, v1], color="grey", lw=0.5)
    b.set_xticks([0, 1], [m["baseline"], "found"])
    b.set(ylabel="test accuracy", title="test seeds (paired)")
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return path


def headline(m: dict) -> str:
    t = m["test"]
    p = f", paired p = {t['p_value']:.3g}" if t["p_value"] is not None else ""
    line = (f"{m['component']} found: {m['found']} (chosen on validation); test accuracy over {t['seeds']} seeds "
            f"{t['found']['mean']:.4f} ± {t['found']['std']:.4f} against {t['baseline']['mean']:.4f} ± "
            f"{t['baseline']['std']:.4f} with {m['baseline']}{p}")
    if not m.get("beats_baseline_on_validation", True):
        line += f"; it does not beat {m['baseline']} on validation: keep {m['baseline']}"
    return line


def report_md(m: dict) -> str:
    lines = [f"# {m['component']} search", "", m["headline"], "",
             f"Chosen by: {m['report_rule']}.", "",
             "| candidate | search val | fresh-seed val (mean ± std) |", "|---|---:|---:|"]
    for r in m["select_candidates"]:
        lines.append(f"| `{r['text']}` | {r['search_val_accuracy']:.4f} | {r['fresh_val']['mean']:.4f} ± "
                     f"{r['fresh_val']['std']:.4f} |")
    b = m["baseline_fresh_val"]
    lines.append(f"| baseline `{m['baseline']}` | | {b['mean']:.4f} ± {b['std']:.4f} |")
    lines += ["", f"Use it in any run: `{m['use_with']}: {m['found_file']}`.", ""]
    return "\n".join(lines)


"""The select stage of a weight-agnostic search: choose on validation, tune, test, export.

1. The front: non-dominated successfully scored networks over ``search.objectives``.
2. Every front member is scored on **validation** (validation images; for control, fresh
   rollouts whose seeds the search never used) at the shared weights. Rules: ``best_accuracy``
   (the best validation mean performance; the best validation ensemble accuracy when the search
   ranked on ``ensemble_score``), ``knee`` and ``spread`` (on the front's objectives).
3. Each selected network (:func:`finalize`) is reported on **test** (test images, or another set of
   fresh rollouts) as the paper reports it: at random shared weights (mean ± std over the weights
   and rollouts), the weights' ensemble (classification: they vote), the best single shared weight
   (picked on validation), and individual weights tuned from it (gradient descent on the training
   split for classification, REINFORCE for control). Exports: the genome (JSON), the network as
   ONNX with its best shared weight and with its tuned weights, and a drawing coloured by activation.
4. ``reports/metrics.json``: the model chosen by validation (the test split chooses nothing), its
   test figures, and every selected model's own.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nas.config import Config
from nas.genome import Genome
from nas.io import atomic_save_figure, atomic_write_json, atomic_write_text
from nas.objectives import to_minimise
from nas.pareto import hypervolume, knee_point, non_dominated, spread_points

REPORT_RULE = ("best_accuracy: of the selected networks, the one with the best validation performance at its best "
               "shared weight (ties: fewer connections); the test split chooses nothing")


def _split_seed(base: int, genome: Genome, split: str) -> int:
    """Rollout seeds of the validation and test episodes: disjoint from the search's by construction."""
    return int.from_bytes(hashlib.sha256(f"{base}:{genome.key()}:{split}".encode()).digest()[:4], "little")


def task_and_space(cfg: Config):
    """The task and the space (built here, not through nas.factory, so that scoring one genome
    does not import Dask)."""
    from nas.spaces.wann import WANNSpace
    from nas.wann.tasks import make_task

    task, w = make_task(cfg.evaluation.wann, cfg.data.out_dir), cfg.space.wann
    return task, WANNSpace(task.n_in, task.n_out, w.activations, w.init_connection_prob, w.out_act, w.mutation,
                           w.max_hidden)


def scores(task, spec: dict, weights: np.ndarray, split: str, seed: int, rollouts: int | None = None) -> np.ndarray:
    """Performance of ``spec`` on ``split`` (val or test) at each row of ``weights`` (``(W,)``
    shared or ``(W, E)`` per connection): accuracy per row; for control, returns ``(W, R)``."""
    from nas.wann.network import compile_plan, forward_numpy
    from nas.wann.tasks import accuracies

    plan = compile_plan(spec)
    w = np.asarray(weights, dtype=np.float64)
    if task.kind == "classify":
        x, y = task.split(split)
        return accuracies(plan, x, y, w)
    from nas.wann.tune import _act

    return task.returns(lambda o: _act(forward_numpy(plan, o, w), task), len(w), seed, rollouts)


def val_scores(task, spec: dict, weights: np.ndarray, seed: int, rollouts: int) -> np.ndarray:
    """Validation performance at each of ``weights``: accuracy, or the mean return over ``rollouts``
    episodes of the validation seeds."""
    if task.kind == "classify":
        return scores(task, spec, weights, "val", seed)
    return scores(task, spec, weights, "val", seed, rollouts).mean(axis=1)


def front_table(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    from nas.runners import read_populations

    df = read_populations(Path(cfg.search.out_dir) / "populations").drop_duplicates("candidate_id")
    df = df.reset_index(drop=True)
    ok = df[df.status == "ok"]
    if ok.empty:
        raise RuntimeError("no network was scored successfully: see the errors in "
                           f"{Path(cfg.search.out_dir) / 'populations'}")
    F = np.array([to_minimise(r, cfg.search.objectives) for r in ok.to_dict("records")])
    front = ok.iloc[non_dominated(F)].copy()
    return df, front.sort_values([search_score(cfg), "connections"], ascending=[False, True]).reset_index(drop=True)


def search_score(cfg: Config) -> str:
    """What the search ranked on first: ``mean_score`` or ``ensemble_score``."""
    from nas.config import wann_score

    return wann_score(cfg.search.objectives)


def select(cfg: Config) -> dict:
    t0 = time.perf_counter()
    task, space = task_and_space(cfg)
    all_df, front = front_table(cfg)
    w = np.array(cfg.evaluation.wann.weights)
    val, val_ens = [], []
    on_ensemble = search_score(cfg) == "ensemble_score"  # then best_accuracy chooses on the validation ensemble
    if on_ensemble:
        from nas.wann.network import compile_plan, forward_numpy
        from nas.wann.tasks import classify_scores

        xv, yv = task.split("val")
    for r in front.to_dict("records"):
        g = Genome.from_json(r["genome"], space.name)
        if on_ensemble:  # the accuracies at each weight and the ensemble's from one forward pass
            per, ens = classify_scores(forward_numpy(compile_plan(space.spec(g)), xv, w), yv)
            val.append(float(np.mean(per)))
            val_ens.append(ens)
        else:
            val.append(float(np.mean(scores(task, space.spec(g), w, "val", _split_seed(cfg.seed, g, "val")))))
    front["val_mean_score"] = val
    if on_ensemble:
        front["val_ensemble"] = val_ens
        val = val_ens
    F = np.array([to_minimise(r, cfg.search.objectives) for r in front.to_dict("records")])
    picks: dict[str, list[str]] = {}
    for rule in cfg.selection.rules:
        if rule == "best_accuracy":
            best = max(range(len(front)), key=lambda i: (val[i], -front.connections.iloc[i]))
            picks.setdefault(front.candidate_id.iloc[best], []).append("best_accuracy")
        elif rule == "knee":
            picks.setdefault(front.candidate_id.iloc[knee_point(F)], []).append("knee")
        elif rule == "spread":
            for i in spread_points(F, cfg.selection.n_spread):
                picks.setdefault(front.candidate_id.iloc[i], []).append("spread")
    from nas.stages import clear_models

    clear_models(cfg)
    rows = {r["candidate_id"]: r for r in front.to_dict("records")}
    cards = [finalize(cfg, rows[c], rules, task, space) for c, rules in picks.items()]
    return write_reports(cfg, all_df, front, picks, cards, time.perf_counter() - t0)


def finalize(cfg: Config, row: dict, rules: list[str], task=None, space=None) -> dict:
    """Test, tune and export one selected network; returns its card."""
    from nas.genome import candidate_seed
    from nas.wann.tune import best_shared_weight, policy_returns, tune_control

    t0 = time.perf_counter()
    if task is None:
        task, space = task_and_space(cfg)
    ev = cfg.evaluation.wann
    g = Genome.from_json(row["genome"], space.name)
    spec = space.spec(g)
    seed = candidate_seed(cfg.seed, g)
    vs, ts = _split_seed(cfg.seed, g, "val"), _split_seed(cfg.seed, g, "test")
    shared = np.array(ev.weights)
    control = task.kind != "classify"
    R = ev.test_rollouts if control else None
    at_shared = scores(task, spec, shared, "test", ts, R)
    w_best, val_best = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, ev.rollouts))
    card = {"candidate_id": row["candidate_id"], "genome": spec, "space": space.name, "task": ev.task,
            "architecture": space.describe(g), "selected_by": rules, "connections": len(spec["conns"]),
            "hidden_nodes": len(spec["hidden"]), "search_mean_score": float(row["mean_score"]),
            "search_max_score": float(row["max_score"]), "shared_weights": list(ev.weights), "seed": seed,
            "base_seed": cfg.seed, "best_shared_weight": w_best, "val_best_shared": val_best,
            "random_shared": {"mean": float(np.mean(at_shared)), "std": float(np.std(at_shared)),
                              "per_weight": [float(v) for v in (at_shared.mean(axis=1) if control else at_shared)]}}
    if control:
        card["val_performance"] = float(val_best)
        card["tuned_shared"] = _stats(scores(task, spec, np.array([w_best]), "test", ts, R)[0])
        tuned = tune_control(task, spec, w_best, ev, seed, val_seed=vs)
        val_tuned = float(np.mean(policy_returns(task, spec, tuned, vs, ev.rollouts)))
        card["tuned_weights"] = _stats(policy_returns(task, spec, tuned, ts, R))
        card["tuned_weights"]["val"] = val_tuned
        card["metric"] = "return"
    else:
        from nas.wann.network import compile_plan
        from nas.wann.tasks import ensemble_accuracy

        plan = compile_plan(spec)
        xv, yv = task.split("val")
        tuned = tune_selected_classifier(task, spec, w_best, ev, seed)
        xt, yt = task.split("test")
        card["val_performance"] = float(val_best)
        card["ensemble"] = {"val": ensemble_accuracy(plan, xv, yv, shared), "test": ensemble_accuracy(plan, xt, yt, shared)}
        card["tuned_shared"] = {"mean": float(scores(task, spec, np.array([w_best]), "test", ts)[0])}
        card["tuned_weights"] = {"mean": float(scores(task, spec, tuned[None, :], "test", ts)[0]),
                                 "val": float(scores(task, spec, tuned[None, :], "val", vs)[0])}
        card["metric"] = "accuracy"
    card["tuned_weight_values"] = [float(v) for v in tuned]
    card["files"] = export(cfg, row["candidate_id"], space, g, w_best, tuned, task)
    card["seconds"] = time.perf_counter() - t0
    atomic_write_json(Path(cfg.selection.out_dir) / "models" / f"{row['candidate_id']}.json", card)
    return card


def tune_selected_classifier(task, spec: dict, w_best, ev, seed: int) -> np.ndarray:
    """Individual weights of a classifier tuned from its best shared weight (or from per-connection
    starting weights), as the select stage tunes every selected network: ``ev.tune_steps`` steps on
    the training images, keeping the iterate that scores best on validation (``ev`` is
    ``evaluation.wann``)."""
    from nas.wann.tune import tune_classifier

    x, y = task.split("train")
    return tune_classifier(spec, x, y, w_best, ev.tune_steps, ev.tune_lr, seed, val=task.split("val"),
                           val_every=ev.tune_val_every, weight_decay=ev.tune_weight_decay,
                           input_noise=ev.tune_input_noise)


def _stats(v) -> dict:
    v = np.asarray(v, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std())}


def export(cfg: Config, cid: str, space, genome: Genome, w_best: float, tuned: np.ndarray, task) -> dict:
    """ONNX with the best shared weight and with the tuned weights, and for a classifier the shared
    weights' ensemble (each checked against torch with onnxruntime); and a drawing."""
    from nas.export import export_onnx, onnx_max_abs_diff
    from nas.wann.draw import draw_wann
    from nas.wann.network import WannEnsemble, WannNet

    out = Path(cfg.selection.out_dir) / "models"
    spec = space.spec(genome)
    shape = (space.n_in,)
    x = np.random.default_rng(0).normal(size=(8, space.n_in)).astype(np.float32)
    files, diffs = {}, {}
    nets = {"shared": WannNet(spec, w_best), "tuned": WannNet(spec, tuned)}
    if task.kind == "classify":  # what the digits example ranks on and reports: deployable as one file
        nets["ensemble"] = WannEnsemble(spec, cfg.evaluation.wann.weights)
    for name, net in nets.items():
        net = net.float()
        path = export_onnx(net, shape, out / f"{cid}.{name}.onnx")
        files[f"onnx_{name}"] = path.name
        diffs[name] = onnx_max_abs_diff(net, path, x)
    files["onnx_max_abs_diff"] = diffs
    files["drawing"] = draw_wann(space, genome, out / f"{cid}.png",
                                 f"{cid} ({task.kind}): {len(spec['conns'])} connections, best shared weight "
                                 f"{w_best:g}").name
    return files


def write_reports(cfg: Config, all_df: pd.DataFrame, front: pd.DataFrame, picks: dict, cards: list[dict],
                  seconds: float) -> dict:
    sel = cfg.selection
    by_id = {c["candidate_id"]: c for c in cards}
    front = front.copy()
    front["selected"] = front.candidate_id.isin(picks)
    front["selected_by"] = [";".join(picks.get(c, [])) for c in front.candidate_id]
    front["test_tuned_shared"] = [by_id[c]["tuned_shared"]["mean"] if c in by_id else np.nan for c in front.candidate_id]
    front["test_tuned_weights"] = [by_id[c]["tuned_weights"]["mean"] if c in by_id else np.nan for c in front.candidate_id]
    cols = ["candidate_id", "genome", "mean_score", "ensemble_score", "max_score", "min_score", "connections",
            "hidden_nodes", "val_mean_score", "val_ensemble", "selected", "selected_by", "test_tuned_shared",
            "test_tuned_weights", "generation", "worker", "eval_seconds"]
    front = front[[c for c in cols if c in front.columns]]
    atomic_write_text(Path(sel.out_dir) / "pareto.csv", front.to_csv(index=False))
    reports = Path(sel.reports_dir)
    plot_front(reports / "pareto.png", all_df, front, cfg)
    summary = json.loads((Path(cfg.search.out_dir) / "summary.json").read_text())
    F = np.array([to_minimise(r, cfg.search.objectives) for r in front.to_dict("records")])
    hv = hypervolume(F, np.array(summary["ideal"]), np.array(summary["nadir"]))
    selected = [{"candidate_id": c["candidate_id"], "selected_by": c["selected_by"], "connections": c["connections"],
                 "val_performance": c["val_performance"], "random_shared": c["random_shared"],
                 **({"ensemble": c["ensemble"]} if "ensemble" in c else {}),
                 "tuned_shared": c["tuned_shared"], "tuned_weights": c["tuned_weights"],
                 "best_shared_weight": c["best_shared_weight"]} for c in cards]
    best = max(cards, key=lambda c: (c["val_performance"], -c["connections"], c["candidate_id"])) if cards else None
    metric = best["metric"] if best else "score"
    metrics = {
        "task": cfg.evaluation.wann.task, "metric": metric,
        "n_evaluated": int(len(all_df)), "n_failed": int((all_df.status == "failed").sum()),
        "n_timeout": int((all_df.status == "timeout").sum()), "failures": summary.get("failures", {}),
        "resumed_from_generation": summary.get("resumed_from_generation"),
        "n_pareto": int(len(front)), "n_selected": int(len(cards)), "hypervolume": hv,
        "best_mean_score": float(all_df[all_df.status == "ok"].mean_score.max()),
        "report_rule": REPORT_RULE, "reported_model": best["candidate_id"] if best else None,
        "test_random_shared": best["random_shared"] if best else None,
        "test_tuned_shared": best["tuned_shared"]["mean"] if best else None,
        "test_tuned_weights": best["tuned_weights"]["mean"] if best else None,
        "selected_models": selected,
        "stage_seconds": {"search": summary["seconds"], "select": seconds},
        **cfg.run_identity(),
    }
    if best and "ensemble" in best:
        metrics["test_ensemble"] = best["ensemble"]["test"]
    metrics["headline"] = headline(metrics)
    atomic_write_json(reports / "metrics.json", metrics)
    return metrics


def headline(m: dict) -> str:
    if not m.get("reported_model"):
        return "no network was selected"
    unit = "accuracy" if m["metric"] == "accuracy" else "return"
    rs = m["test_random_shared"]
    parts = [f"test {unit} of {m['reported_model']} (chosen by validation, the test split chooses nothing): "
             f"random shared weight {rs['mean']:.4g} ± {rs['std']:.3g}"]
    if "test_ensemble" in m:
        parts.append(f"ensemble of the shared weights {m['test_ensemble']:.4g}")
    parts += [f"best shared weight {m['test_tuned_shared']:.4g}", f"tuned weights {m['test_tuned_weights']:.4g}"]
    return "; ".join(parts)


def plot_front(path: Path, all_df: pd.DataFrame, front: pd.DataFrame, cfg: Config) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = all_df[all_df.status == "ok"]
    score = search_score(cfg)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(ok.connections, ok[score], s=8, c="lightgray", label="evaluated")
    f = front.iloc[non_dominated(np.column_stack([-front[score].to_numpy(), front.connections.to_numpy()]))]
    f = f.sort_values("connections")
    ax.step(f.connections, f[score], "o-", where="post", ms=4, c="tab:blue", label="non-dominated")
    s = front[front.selected]
    ax.scatter(s.connections, s[score], s=90, facecolors="none", edgecolors="tab:red", linewidths=2,
               label="selected")
    ax.set_xlabel("connections")
    ax.set_ylabel("mean performance over shared weights (search)" if score == "mean_score"
                  else "the shared weights' ensemble (search)")
    ax.set_title(f"WANN front: {cfg.evaluation.wann.task}")
    ax.legend(fontsize=8)
    return atomic_save_figure(fig, path)


def score_file(cfg: Config, path: str | Path) -> dict:
    """Score a WANN genome from a JSON file (the genome itself, or a model card holding it under
    ``genome``) on the validation split at every shared weight, and find its best shared weight.
    Raises ValueError naming what is wrong with the file before anything is scored."""
    from nas.genome import canonical_json

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"genome file {str(path)!r} does not exist")
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"genome file {str(path)!r} is not JSON ({exc})") from None
    spec = doc.get("genome", doc) if isinstance(doc, dict) else doc
    if not isinstance(spec, dict):
        raise ValueError(f"genome file {str(path)!r} must hold a WANN genome object (inputs, outputs, hidden, conns)")
    from nas.spaces.wann import WANNSpace

    g = Genome((), "wann", canonical_json(spec))
    try:  # the graph itself first (no data needed), then its inputs and outputs against the task
        if not isinstance(spec.get("inputs"), int) or not isinstance(spec.get("outputs"), int):
            raise ValueError("a WANN genome needs integer fields inputs and outputs")
        WANNSpace(max(1, spec["inputs"]), max(1, spec["outputs"])).validate(g)
    except ValueError as exc:
        raise ValueError(f"genome file {str(path)!r}: {exc}") from None
    task, space = task_and_space(cfg)
    if (spec["inputs"], spec["outputs"]) != (task.n_in, task.n_out):
        shape = ""
        if task.kind == "classify":
            shape = f" (the prepared images, {'x'.join(map(str, task.data.x_train.shape[1:]))}, flatten to {task.n_in})"
        raise ValueError(f"genome file {str(path)!r} has {spec['inputs']} inputs and {spec['outputs']} outputs; task "
                         f"{cfg.evaluation.wann.task!r} has {task.n_in} inputs{shape} and {task.n_out} outputs")
    from nas.wann.tune import best_shared_weight

    vs = _split_seed(cfg.seed, g, "val")
    w = np.array(cfg.evaluation.wann.weights)

    per = val_scores(task, spec, w, vs, cfg.evaluation.wann.rollouts)
    best_w, best = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, cfg.evaluation.wann.rollouts))
    return {"candidate_id": g.key(), "task": cfg.evaluation.wann.task, "architecture": space.describe(g),
            "val_per_weight": dict(zip(map(float, w), map(float, per))), "val_mean": float(per.mean()),
            "best_shared_weight": best_w, "val_best_shared": best}

"""Multi-task NAS on Omniglot against its baselines, all measured in one run.

Four ways to learn the alphabets of the (packaged, 5-alphabet) Omniglot subset, each alphabet
a task, every final network trained from scratch with the same per-task training budget
(``--epochs`` passes over each task's training images) and scored on the held-out drawers:

* ``single_task``: one hand-designed CNN per task, trained on that task alone;
* ``fixed_multitask``: the same CNN as a trunk shared by every task, one head per task,
  trained jointly;
* ``heads``: CoDeepNEAT evolves the shared trunk (``space.multitask: heads``);
* ``routing``: CoDeepNEAT coevolves shared modules and one topology per task
  (``space.multitask: routing``).

The two evolved schemes are searched with the settings of ``--params`` (default
``examples/omniglot_multitask.yaml``), on Dask like any search; the most accurate network
found (mean validation accuracy over tasks) is then retrained like the baselines. Each final
network is trained ``--repeats`` times from different seeds (the test sets are small: 88-160
images per alphabet) and its accuracies are the means; the spread of the mean over seeds is
printed beside them. Multi-task networks are trained on mini-batches that mix the tasks
(``nas.training.train_multitask``).

    .venv/bin/python benchmarks/multitask.py --json benchmarks/results/multitask.json

prints per-task and mean test accuracy of each, and ``--json`` writes
``{"single_task": {task: acc, ..., "mean": m}, "fixed_multitask": {...}, "heads": {...},
"routing": {...}}`` (plus the search settings, timings and each seed's mean under ``"meta"``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.config import load_config  # noqa: E402
from nas.genome import Genome, candidate_seed  # noqa: E402
from nas.training import accuracy, accuracy_by_task, task_rows, train, train_multitask  # noqa: E402


def hand_cnn(in_channels: int, width: int = 32) -> nn.Sequential:
    """The hand-designed trunk of both baselines: two conv-BN-ReLU-maxpool blocks."""
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten())


class FixedMultiTask(nn.Module):
    def __init__(self, in_channels: int, task_classes: list[int], width: int = 32):
        super().__init__()
        self.trunk = hand_cnn(in_channels, width)
        self.heads = nn.ModuleList(nn.Linear(width * 16, k) for k in task_classes)

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        return self.heads[task](self.trunk(x))

    def forward_mixed(self, x: torch.Tensor, t: torch.Tensor) -> list:
        """Mixed-task batches (see ``nas.training.task_logits``): the trunk sees the whole batch."""
        h = self.trunk(x)
        return [(k, rows, self.heads[k](h[rows])) for k, rows in task_rows(t)]


def single_task(data, epochs: int, lr: float, batch: int, seed: int) -> list[float]:
    out = []
    for k in range(data.n_tasks):
        tr, te = data.t_train == k, data.t_test == k
        torch.manual_seed(seed + k)
        net = nn.Sequential(hand_cnn(data.input_shape[0]), nn.Linear(32 * 16, data.task_num_classes[k]))
        train(net, data.x_train[tr], data.y_train[tr], epochs, lr, batch, np.random.default_rng(seed + k))
        out.append(accuracy(net, data.x_test[te], data.y_test[te]))
    return out


def fixed_multitask(data, epochs: int, lr: float, batch: int, seed: int) -> tuple[list[float], int]:
    torch.manual_seed(seed)
    net = FixedMultiTask(data.input_shape[0], data.task_num_classes)
    train_multitask(net, data.x_train, data.y_train, data.t_train, data.n_tasks, epochs, lr, batch,
                    np.random.default_rng(seed))
    return accuracy_by_task(net, data.x_test, data.y_test, data.t_test, data.n_tasks), sum(
        p.numel() for p in net.parameters())


def evolved(cfg, scheme: str, data, epochs: int, lr: float, batch: int, finalists: int = 1,
            repeats: int = 1) -> tuple[np.ndarray, dict]:
    """Search with ``scheme``; retrain the ``finalists`` most accurate networks found (by the
    search's short-training validation accuracy) with the full budget, keep the one with the
    best validation accuracy after it, and score that one on test after each of ``repeats``
    trainings from different seeds (test accuracy: one row per training, one column per task)."""
    from nas import stages
    from nas.evaluators.standalone import build_model
    from nas.factory import build_space
    from nas.runners import read_populations

    cfg = cfg.model_copy(deep=True)
    cfg.space.multitask = scheme
    t0 = time.perf_counter()
    summary = stages.run_search(cfg, resume=False)
    found = read_populations(Path(cfg.search.out_dir) / "populations")
    found = found[found.status == "ok"].sort_values(["val_accuracy", "params"], ascending=[False, True])
    space = build_space(cfg)

    def fit(genome: Genome, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        net = build_model(cfg.space, genome, data.input_shape[0], data.num_classes, data.input_shape,
                          cfg.evaluation.init, seed, task_classes=data.task_num_classes)
        train_multitask(net, data.x_train, data.y_train, data.t_train, data.n_tasks, epochs, lr, batch,
                        np.random.default_rng(seed))
        return net

    trained = []
    for _, row in found.head(max(1, finalists)).iterrows():
        genome = Genome.from_json(row["genome"], space.name)
        net = fit(genome, candidate_seed(cfg.seed, genome))
        val = float(np.mean(accuracy_by_task(net, data.x_val, data.y_val, data.t_val, data.n_tasks)))
        trained.append((val, row, genome, net))
    val, best, genome, net = max(trained, key=lambda t: t[0])
    seed = candidate_seed(cfg.seed, genome)
    nets = [net] + [fit(genome, seed + r) for r in range(1, repeats)]
    acc = np.array([accuracy_by_task(n, data.x_test, data.y_test, data.t_test, data.n_tasks) for n in nets])
    info = {"candidate_id": best["candidate_id"], "search_val_accuracy": float(best["val_accuracy"]),
            "finalists": len(trained), "final_val_accuracy": val,
            "params": int(sum(p.numel() for p in net.parameters())), "evaluated": int(summary["n_evaluated"]),
            "architecture": space.describe(genome), "search_seconds": summary["seconds"],
            "seconds": time.perf_counter() - t0}
    if hasattr(space, "sharing"):
        info["sharing"] = space.sharing(genome)
    return acc, info


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, default=ROOT / "examples" / "omniglot_multitask.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE override (repeatable)")
    ap.add_argument("--epochs", type=int, default=15, help="final training passes over each task's data")
    ap.add_argument("--schemes", default="heads,routing", help="evolved schemes to run")
    ap.add_argument("--finalists", type=int, default=1,
                    help="best networks of each search retrained with the full budget; the best on validation is tested")
    ap.add_argument("--repeats", type=int, default=3,
                    help="trainings (seeds) each final network's test accuracy is averaged over")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from nas import stages

    work = Path(tempfile.mkdtemp(prefix="evonas-multitask-"))
    outs = [f"data.out_dir={work}/data", f"search.out_dir={work}/search", f"selection.out_dir={work}/select",
            f"selection.reports_dir={work}/reports"]
    cfg = load_config(args.params, outs + args.sets)
    t0 = time.perf_counter()
    data = stages.prepare_data(cfg)
    stages.write_prepared(cfg, data, 0.0)
    ev = cfg.evaluation
    lr, batch = ev.train_lr, ev.train_batch_size
    results: dict[str, dict] = {}
    meta: dict = {"tasks": data.tasks, "task_classes": data.task_num_classes, "epochs": args.epochs,
                  "n_train": int(len(data.y_train)), "n_test": int(len(data.y_test)), "params_file": str(args.params),
                  "overrides": args.sets, "finalists": args.finalists,
                  "repeats": args.repeats}

    def record(name: str, runs) -> None:
        """``runs``: test accuracy per training seed (rows) and task (columns)."""
        runs = np.asarray(runs, dtype=float).reshape(-1, data.n_tasks)
        accs, means = runs.mean(axis=0), runs.mean(axis=1)
        results[name] = {**dict(zip(data.tasks, map(float, accs))), "mean": float(means.mean())}
        meta.setdefault("mean_by_seed", {})[name] = [float(m) for m in means]
        print(f"{name:16s} mean {means.mean():.4f} ± {means.std():.4f} over {len(means)} seed(s)  "
              + "  ".join(f"{t}: {a:.3f}" for t, a in zip(data.tasks, accs)), flush=True)

    s = time.perf_counter()
    seeds = [cfg.seed + 100 * r for r in range(args.repeats)]
    record("single_task", [single_task(data, args.epochs, lr, batch, sd) for sd in seeds])
    meta["single_task_seconds"] = time.perf_counter() - s
    s = time.perf_counter()
    runs = [fixed_multitask(data, args.epochs, lr, batch, sd) for sd in seeds]
    params = runs[0][1]
    record("fixed_multitask", [a for a, _ in runs])
    meta["fixed_multitask"] = {"params": params, "seconds": time.perf_counter() - s}
    for scheme in [x for x in args.schemes.split(",") if x]:
        accs, info = evolved(cfg, scheme, data, args.epochs, lr, batch, args.finalists, args.repeats)
        record(scheme, accs)
        meta[scheme] = info
    meta["seconds"] = time.perf_counter() - t0

    names = list(results)
    print("\nTest accuracy per task (each alphabet one task; held-out drawers)")
    print(f"{'task':24s}" + "".join(f"{n:>17s}" for n in names))
    for t in [*data.tasks, "mean"]:
        print(f"{t:24s}" + "".join(f"{results[n][t]:17.4f}" for n in names))
    print(f"{'std over seeds':24s}" + "".join(f"{np.std(meta['mean_by_seed'][n]):17.4f}" for n in names))
    evolved_names = [n for n in names if n in ("heads", "routing")]
    if evolved_names:
        best = max(evolved_names, key=lambda n: results[n]["mean"])
        print(f"\nbest evolved scheme: {best} (mean {results[best]['mean']:.4f}); single-task "
              f"{results['single_task']['mean']:.4f}, fixed multi-task {results['fixed_multitask']['mean']:.4f}")
    print(f"wall {meta['seconds']:.0f} s")
    out = {**results, "meta": meta}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()

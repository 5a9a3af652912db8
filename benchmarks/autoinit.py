"""Does AutoInit make a short training rank architectures more like a longer one?

NAS often scores candidates after a very short training, which is only useful if the short
score ranks the candidates the way a longer training would. An initialisation that keeps every
layer's signal at mean 0 / variance 1 (AutoInit, ``nas.autoinit``) should make the first epoch
less dependent on how badly an architecture's default init scales the signal, so the short
ranking should agree better with the long one. This script measures that, in one run:

1. sample ``--n`` distinct networks (seeded) from a search space (``sample_networks``; only
   ``--space nb201`` today: NAS-Bench-201 cells built with ``channels=8, cells=1`` for 1-channel
   8x8 inputs; another space plugs in as one more branch of ``sample_networks``);
2. load scikit-learn's digits (8x8), normalise with the training mean/std, seeded stratified
   70/30 train/validation split;
3. train every network with the short (``--short-epochs``) and the long (``--long-epochs``)
   schedule, once with torch's default init and once with AutoInit; network ``i`` uses seed
   ``seed + i`` for its default weights, its AutoInit draw and its batch order, so the only
   difference between the two arms is the initialisation (``nas.training.train``: SGD with
   Nesterov momentum, cosine schedule over the whole run, lr 0.05, batch 64);
4. print, side by side: Spearman and Kendall tau between short- and long-training validation
   accuracy per arm (each arm against its own long training, and both against one common
   target, the mean of the two long accuracies), the mean accuracies, and how many runs
   diverged.

    python benchmarks/autoinit.py [--space nb201] [--n 24] [--short-epochs 1] [--long-epochs 8]
                                  [--seed 0] [--json PATH]

The default run (24 networks x 2 inits x (1 + 8) epochs = 432 epochs of ~1,260 images) takes
about 2 minutes on one CPU core (106 s measured), well under the 10-minute budget.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.autoinit import AutoInitWarning, init_model  # noqa: E402
from nas.training import DivergedError, accuracy, train  # noqa: E402

SPACES = ("nb201", "codeepneat")
INITS = ("default", "autoinit")
LR, BATCH = 0.05, 64


@dataclass(frozen=True)
class NetworkSpec:
    """One sampled architecture: a label and a builder of a freshly initialised network."""

    name: str
    build: Callable[[int, int], nn.Module]  # (in_channels, num_classes) -> module


def sample_networks(kind: str, n: int, seed: int) -> list[NetworkSpec]:
    """``n`` distinct architectures of search space ``kind``, sampled with ``seed``."""
    rng = np.random.default_rng(seed)
    if kind == "nb201":
        from nas.spaces.nb201 import NB201Space
        from nas.spaces.nb201_build import build_nb201

        space = NB201Space()
        if n > len(space.ops) ** space.n_var:
            raise ValueError(f"the nb201 space has only {len(space.ops) ** space.n_var} cells, asked for {n}")
        genomes: list = []
        while len(genomes) < n:
            g = space.sample(rng)
            if g not in genomes:
                genomes.append(g)
        return [NetworkSpec(space.describe(g),
                            lambda c, k, g=g: build_nb201(g, in_channels=c, num_classes=k, channels=8,
                                                          cells_per_stage=1))
                for g in genomes]
    if kind == "codeepneat":  # random assembled networks, grown by up to 6 mutations per graph (no BN forced)
        from nas.spaces.codeepneat import CoDeepNEATSpace
        from nas.spaces.codeepneat_build import build_codeepneat

        space = CoDeepNEATSpace()
        nets: list = []
        while len(nets) < n:
            g = space.sample(rng, mutations=6)
            if g not in nets:
                nets.append(g)
        return [NetworkSpec(space.describe(g),
                            lambda c, k, g=g: build_codeepneat(space, g, c, k, (c, 8, 8)))
                for g in nets]
    raise ValueError(f"unknown --space {kind!r}; supported: {', '.join(SPACES)} "
                     "(add a branch to sample_networks for a new space)")


def load_digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    tr, va = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=seed)
    mean, std = float(x[tr].mean()), float(x[tr].std())
    x = ((x - mean) / std).astype(np.float32)
    return x[tr], y[tr], x[va], y[va]


def run_one(spec: NetworkSpec, init: str, epochs: int, seed: int, data) -> dict:
    x_tr, y_tr, x_va, y_va = data
    torch.manual_seed(seed)  # default init: the same weights for both schedules
    net = spec.build(x_tr.shape[1], int(y_tr.max()) + 1)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # counted, not printed 432 times
        warnings.simplefilter("always", AutoInitWarning)
        report = init_model(net, init, tuple(x_tr.shape[1:]), rng_seed=seed)  # data normalised: input (0, 1)
    t_init = time.perf_counter() - t0
    kept_default = sum(li.std is None for li in report.layers) if report is not None else 0
    if report is not None and (not report.applied or report.unknown_ops):
        raise RuntimeError(f"AutoInit did not apply cleanly to {spec.name}: {report.reason or report.unknown_ops}")
    diverged = False
    try:
        losses = train(net, x_tr, y_tr, epochs, LR, BATCH, np.random.default_rng(seed))
    except DivergedError:
        losses, diverged = [math.nan], True
    acc = 0.0 if diverged else accuracy(net, x_va, y_va)
    return {"accuracy": acc, "final_loss": losses[-1], "diverged": diverged, "init_s": t_init,
            "layers_kept_default": kept_default, "warnings": len(caught),
            "wall_s": time.perf_counter() - t0}


def correlations(short: list[float], long: list[float]) -> dict[str, float]:
    rho = spearmanr(short, long).statistic
    tau = kendalltau(short, long).statistic
    return {"spearman": float(rho), "kendall": float(tau)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="nb201", help=f"search space to sample ({', '.join(SPACES)})")
    ap.add_argument("--n", type=int, default=24, help="networks sampled")
    ap.add_argument("--short-epochs", type=int, default=1)
    ap.add_argument("--long-epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the figures and per-network results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    try:
        specs = sample_networks(args.space, args.n, args.seed)
    except ValueError as exc:
        ap.error(str(exc))
    data = load_digits_split(args.seed)
    print(f"AutoInit ranking benchmark: space={args.space} n={args.n} short={args.short_epochs} "
          f"long={args.long_epochs} epochs, digits {len(data[1])} train / {len(data[3])} val, seed {args.seed}")
    rows = []
    for i, spec in enumerate(specs):
        seed = args.seed + i
        row: dict = {"index": i, "arch": spec.name, "seed": seed}
        for init in INITS:
            for sched, ep in (("short", args.short_epochs), ("long", args.long_epochs)):
                row[f"{init}_{sched}"] = run_one(spec, init, ep, seed, data)
        rows.append(row)
        print(f"  [{i + 1:>2}/{len(specs)}] " + "  ".join(
            f"{init}: {row[f'{init}_short']['accuracy']:.3f} -> {row[f'{init}_long']['accuracy']:.3f}"
            for init in INITS) + f"  {spec.name}", flush=True)

    summary: dict = {}
    # a common target for both arms: the mean of the two long-training accuracies
    ref = [(r["default_long"]["accuracy"] + r["autoinit_long"]["accuracy"]) / 2 for r in rows]
    for init in INITS:
        short = [r[f"{init}_short"]["accuracy"] for r in rows]
        long = [r[f"{init}_long"]["accuracy"] for r in rows]
        summary[init] = {**correlations(short, long),
                         **{f"{k}_vs_common": v for k, v in correlations(short, ref).items()},
                         "mean_short_accuracy": float(np.mean(short)), "mean_long_accuracy": float(np.mean(long)),
                         "diverged": sum(r[f"{init}_{s}"]["diverged"] for r in rows for s in ("short", "long")),
                         "init_s_mean": float(np.mean([r[f"{init}_{s}"]["init_s"] for r in rows
                                                       for s in ("short", "long")])),
                         "networks_with_dead_convs": sum(r[f"{init}_short"]["layers_kept_default"] > 0 for r in rows)}
    cross = {sched: correlations([r[f"default_{sched}"]["accuracy"] for r in rows],
                                 [r[f"autoinit_{sched}"]["accuracy"] for r in rows]) for sched in ("short", "long")}
    wall = time.perf_counter() - t_start

    print()
    print(f"{'':<36}{'default init':>14}{'AutoInit':>14}")
    lines = [("Spearman (short vs long accuracy)", "spearman", "{:>14.3f}"),
             ("Kendall tau (short vs long)", "kendall", "{:>14.3f}"),
             ("Spearman (short vs common long)", "spearman_vs_common", "{:>14.3f}"),
             ("Kendall tau (short vs common long)", "kendall_vs_common", "{:>14.3f}"),
             (f"mean accuracy, {args.short_epochs} epoch(s)", "mean_short_accuracy", "{:>14.4f}"),
             (f"mean accuracy, {args.long_epochs} epochs", "mean_long_accuracy", "{:>14.4f}"),
             ("diverged runs", "diverged", "{:>14d}"),
             ("init time per network (s)", "init_s_mean", "{:>14.3f}")]
    for label, key, fmt in lines:
        print(f"{label:<36}" + "".join(fmt.format(summary[init][key]) for init in INITS))
    for sched in ("short", "long"):
        print(f"default vs AutoInit accuracy ranks, {sched}: Spearman {cross[sched]['spearman']:.3f}, "
              f"Kendall {cross[sched]['kendall']:.3f}")
    print("(common long = the mean of both arms' long-training accuracy, one target for both columns)")
    print(f"networks with convs fed only by 'none' edges (input always 0, default init kept): "
          f"{summary['autoinit']['networks_with_dead_convs']} of {len(rows)}")
    print(f"wall {wall:.1f} s")

    result = {"config": {"space": args.space, "n": args.n, "short_epochs": args.short_epochs,
                         "long_epochs": args.long_epochs, "seed": args.seed, "lr": LR, "batch_size": BATCH,
                         "channels": 8, "cells_per_stage": 1, "dataset": "sklearn digits 8x8, 70/30 split"},
              "summary": summary, "default_vs_autoinit": cross, "networks": rows, "wall_s": wall}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

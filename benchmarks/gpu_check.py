"""What a GPU changes for the default run: repeatability, agreement with the CPU, speed.

Runs on a machine with CUDA (``evaluation.device: auto`` picks it); it exits with a message
elsewhere. On the default ``params.yaml`` (its data prepared into ``--workdir``):

- **repeatability**: the default supernet trained for ``--epochs`` epochs twice, each in a fresh
  process, with the product's CUDA settings (:func:`nas.training.deterministic_cuda`), and twice
  without them, as before 2026-12-04 (torch's defaults: cuDNN and other kernels free to use
  non-deterministic algorithms): are the two weight sets equal bit for bit, and how far apart?
  (The "before" arm also restores ``adaptive_avg_pool2d`` as the supernet's pooling: the recorded
  run's product code pooled by ``mean`` for a while; torch computes both alike, so it is a no-op.)
- **agreement with the CPU**: ``--subnets`` size-stratified subnets of that supernet scored with
  inherited weights (BatchNorm recalibrated as the search does it) on CUDA and on the CPU: the
  largest difference of validation (soft) accuracy and the Kendall tau between the two.
- **speed**: seconds per supernet epoch on CUDA (with and without the settings) and on the CPU
  with every core and with 2 threads (the 2-core reference machine's setting).

Usage (on the GPU machine):
  python benchmarks/gpu_check.py [--epochs 3] [--subnets 24] [--workdir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
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


def _cfg(workdir: Path, epochs: int, device: str):
    from nas.config import load_config

    return load_config(ROOT / "params.yaml", [f"data.out_dir={workdir / 'data'}", f"supernet.epochs={epochs}",
                                              f"evaluation.device={device}"])


def _digest(state: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train_one(workdir: Path, epochs: int, arm: str, threads: int, out: Path) -> None:
    """One supernet training in this (fresh) process; ``arm``: product | before | cpu."""
    import torch
    import torch.nn.functional as F

    import nas.training
    from nas.data import load_prepared
    from nas.spaces.elastic_build import Supernet
    from nas.supernet import train_supernet

    if arm == "before":  # the code before the CUDA settings: nothing made deterministic (the pooling as the product's)
        nas.training.deterministic_cuda = lambda: None

        def forward(self, x, genome):
            y = self.stem(x)
            for spec in self.space.decode(genome):
                y = self.stages[spec.stage][spec.index](y, spec.kernel_size, spec.expand_ratio, spec.out_channels)
            c = y.shape[1]
            return F.linear(F.adaptive_avg_pool2d(y, 1).flatten(1), self.classifier.weight[:, :c], self.classifier.bias)

        Supernet.forward = forward
    torch.set_num_threads(threads)
    cfg = _cfg(workdir, epochs, "cpu" if arm == "cpu" else "cuda")
    data = load_prepared(cfg.data.out_dir)
    t0 = time.perf_counter()
    net, log = train_supernet(cfg, data)
    seconds = time.perf_counter() - t0
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save(state, out.with_suffix(".pt"))
    out.write_text(json.dumps({"arm": arm, "threads": threads, "seconds": seconds,
                               "seconds_per_epoch": seconds / epochs, "digest": _digest(state),
                               "final_loss": log[-1]["loss"],
                               "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                               "cudnn_deterministic": torch.backends.cudnn.deterministic}))


def _spawn(workdir: Path, epochs: int, arm: str, threads: int, name: str) -> dict:
    out = workdir / f"{name}.json"
    cmd = [sys.executable, __file__, "--train-one", arm, "--threads", str(threads), "--epochs", str(epochs),
           "--workdir", str(workdir), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    warnings = sorted({ln.strip() for ln in proc.stderr.splitlines() if "Warning" in ln})
    return {**json.loads(out.read_text()), "process_seconds": time.perf_counter() - t0, "warnings": warnings}


def _max_diff(a: Path, b: Path) -> float:
    import torch

    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return max(float((sa[k].double() - sb[k].double()).abs().max()) if sa[k].numel() else 0.0 for k in sa)


def cross_device(workdir: Path, weights: Path, n: int) -> dict:
    """Inherited-weight scores of ``n`` size-stratified subnets on CUDA and on the CPU."""
    import torch
    from scipy.stats import kendalltau

    from nas.data import load_prepared
    from nas.spaces.elastic import ElasticSpace
    from nas.objectives import count_params
    from nas.spaces.elastic_build import Supernet, build_subnet, extract_subnet
    from nas.strategies.base import size_stratified
    from nas.training import accuracy_and_soft, recalibrate_bn, resolve_device

    cfg = _cfg(workdir, 1, "cuda")
    data = load_prepared(cfg.data.out_dir)
    space = ElasticSpace(cfg.space)
    sup = Supernet(space, data.input_shape[0], data.num_classes)
    sup.load_state_dict(torch.load(weights, weights_only=True))
    genomes = size_stratified(space, np.random.default_rng([cfg.seed, 99]), n,
                              lambda g: count_params(build_subnet(space, g, data.input_shape[0], data.num_classes)))
    ev = cfg.evaluation
    rows = []
    for i, g in enumerate(genomes):
        row = []
        for dev in (resolve_device("cuda"), torch.device("cpu")):
            net = extract_subnet(sup, g).to(dev)
            recalibrate_bn(net, data.x_train, ev.bn_batches, ev.batch_size, np.random.default_rng(i), dev)
            row.append(accuracy_and_soft(net, data.x_val, data.y_val, device=dev))
        rows.append(row)
    acc = np.array([[r[0][0], r[1][0]] for r in rows])
    soft = np.array([[r[0][1], r[1][1]] for r in rows])
    return {"subnets": n, "max_abs_diff_val_accuracy": float(np.abs(acc[:, 0] - acc[:, 1]).max()),
            "max_abs_diff_val_soft_accuracy": float(np.abs(soft[:, 0] - soft[:, 1]).max()),
            "kendall_tau_soft_cuda_vs_cpu": float(kendalltau(soft[:, 0], soft[:, 1]).statistic),
            "val_soft_accuracy_cuda": soft[:, 0].round(5).tolist(), "val_soft_accuracy_cpu": soft[:, 1].round(5).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="supernet epochs of each training")
    ap.add_argument("--subnets", type=int, default=24)
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--train-one", choices=["product", "before", "cpu"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.train_one:
        return train_one(a.workdir, a.epochs, a.train_one, a.threads, a.out)
    import torch

    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device here; gpu_check.py measures what a GPU changes and needs one")
    from nas.data import prepare, save_prepared

    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = _cfg(workdir, a.epochs, "cuda")
    save_prepared(prepare(cfg.data, cfg.seed), cfg.data.out_dir)
    cores = os.cpu_count() or 1
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, {cores} CPU cores; default params, "
          f"{a.epochs} supernet epochs per training", flush=True)
    runs = {}
    for name, arm, threads in [("product_1", "product", cores), ("product_2", "product", cores),
                               ("before_1", "before", cores), ("before_2", "before", cores),
                               ("cpu_all", "cpu", cores), ("cpu_2", "cpu", 2)]:
        runs[name] = _spawn(workdir, a.epochs, arm, threads, name)
        r = runs[name]
        print(f"  {name:10s} {r['seconds_per_epoch']:7.2f} s/epoch  digest {r['digest']}  loss {r['final_loss']:.4f}"
              f"  deterministic {r['deterministic_algorithms']}/{r['cudnn_deterministic']}", flush=True)
        for w in r["warnings"]:
            print(f"      warning: {w[:200]}")
    rep = {"product": {"equal": runs["product_1"]["digest"] == runs["product_2"]["digest"],
                       "max_abs_weight_diff": _max_diff(workdir / "product_1.pt", workdir / "product_2.pt")},
           "before": {"equal": runs["before_1"]["digest"] == runs["before_2"]["digest"],
                      "max_abs_weight_diff": _max_diff(workdir / "before_1.pt", workdir / "before_2.pt")},
           "cuda_vs_cpu_weights_max_abs_diff": _max_diff(workdir / "product_1.pt", workdir / "cpu_all.pt")}
    print(f"repeatability, two trainings in fresh processes: with the CUDA settings equal={rep['product']['equal']} "
          f"(max |dw| {rep['product']['max_abs_weight_diff']:.3g}); before them equal={rep['before']['equal']} "
          f"(max |dw| {rep['before']['max_abs_weight_diff']:.3g}); CUDA vs CPU weights max |dw| "
          f"{rep['cuda_vs_cpu_weights_max_abs_diff']:.3g}", flush=True)
    t0 = time.perf_counter()
    cross = cross_device(workdir, workdir / "product_1.pt", a.subnets)
    print(f"inherited scores of {a.subnets} subnets, CUDA vs CPU (same weights): max |d val acc| "
          f"{cross['max_abs_diff_val_accuracy']:.4f}, max |d soft| {cross['max_abs_diff_val_soft_accuracy']:.2e}, "
          f"Kendall tau {cross['kendall_tau_soft_cuda_vs_cpu']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    speed = {k: r["seconds_per_epoch"] for k, r in runs.items()}
    print("seconds per supernet epoch: " + ", ".join(f"{k} {v:.2f}" for k, v in speed.items()))
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cpu_cores": cores,
           "epochs": a.epochs, "runs": runs, "repeatability": rep, "cross_device": cross,
           "seconds_per_epoch": speed}
    if a.json:
        from nas.io import atomic_write_json

        atomic_write_json(a.json, out)


if __name__ == "__main__":
    main()

"""Which supernet techniques make inherited weights rank subnets like stand-alone training?

The exploration behind the default ``supernet`` settings on ``omniglot_pooled``. One
invocation runs one arm and writes a JSON file; ``summarise DIR`` prints the comparison of
every arm in a folder (``benchmarks/results/supernet_ablation/``). The commands of the
recorded arms are in ``benchmarks/supernet_ablation.sh``.

- ``standalone``: train the 24 size-stratified subnets (the same selection as
  ``benchmarks/supernet_ranking.py``) from scratch for ``--epochs``; record val and test
  accuracy. ``--seed-offset`` retrains with other seeds (the noise ceiling).
- ``supernet``: train a supernet with the given ``--set`` params and record each subnet's
  inherited validation accuracy after BatchNorm recalibration on 4, 16 and 40 batches.
- ``--shift K``: random translations of up to K pixels in every training batch (data
  augmentation, applied to the supernet and to stand-alone training alike).

Usage:
  python benchmarks/supernet_ablation.py standalone|supernet --out FILE [--set KEY=VALUE ...]
      [--epochs 30] [--shift 0] [--wd 3e-5] [--seed-offset 0]
  python benchmarks/supernet_ablation.py summarise benchmarks/results/supernet_ablation
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
BN = (4, 16, 40)


def add_shift(k: int) -> None:
    """Random per-image translations (replicate padding) in every shuffled training batch."""
    import torch
    import torch.nn.functional as F

    import nas.supernet
    import nas.training

    plain = nas.training.batches

    def shifted(x, y, batch_size, rng=None, device="cpu"):
        for xb, yb in plain(x, y, batch_size, rng, device):
            if rng is not None:  # training batches only (evaluation passes no generator)
                pad = F.pad(xb, (k, k, k, k), mode="replicate")
                off = rng.integers(0, 2 * k + 1, size=(len(xb), 2))
                h, w = xb.shape[2:]
                xb = torch.stack([pad[i, :, o[0]:o[0] + h, o[1]:o[1] + w] for i, o in enumerate(off)])
            yield xb, yb

    nas.training.batches = nas.supernet.batches = shifted


def run(a) -> None:
    import torch

    from nas.config import load_config
    from nas.data import prepare
    from nas.genome import candidate_seed
    from nas.objectives import count_params
    from nas.spaces.elastic import ElasticSpace
    from nas.spaces.elastic_build import build_subnet, extract_subnet
    from nas.strategies.base import size_stratified
    from nas.supernet import train_supernet
    from nas.training import accuracy, recalibrate_bn, resolve_device, train

    if a.shift:
        add_shift(a.shift)
    cfg = load_config(ROOT / "params.yaml", ["data.kind=omniglot_pooled"] + a.overrides)
    torch.set_num_threads(1)
    dev = resolve_device(cfg.evaluation.device)
    data = prepare(cfg.data, cfg.seed)
    space = ElasticSpace(cfg.space)
    size = lambda g: count_params(build_subnet(space, g, data.input_shape[0], data.num_classes))  # noqa: E731
    genomes = size_stratified(space, np.random.default_rng([cfg.seed, 99]), a.n, size)
    t0 = time.time()
    if a.mode == "standalone":
        rows = []
        for g in genomes:
            seed = candidate_seed(cfg.seed, g) + a.seed_offset
            torch.manual_seed(seed)
            net = build_subnet(space, g, data.input_shape[0], data.num_classes).to(dev)
            train(net, data.x_train, data.y_train, a.epochs, a.lr, 64, np.random.default_rng(seed), dev,
                  weight_decay=a.wd)
            rows.append({"g": g.key(), "arch": space.describe(g), "params": count_params(net),
                         "val": accuracy(net, data.x_val, data.y_val, device=dev),
                         "test": accuracy(net, data.x_test, data.y_test, device=dev)})
            print(rows[-1], flush=True)
        result = rows
    else:
        net, log = train_supernet(cfg, data)
        net = net.to(dev)
        rows = []
        for g in genomes:
            r = {"g": g.key(), "arch": space.describe(g)}
            for nb in BN:
                sub = extract_subnet(net, g).to(dev)
                recalibrate_bn(sub, data.x_train, nb, 128, np.random.default_rng(candidate_seed(cfg.seed, g)), dev)
                r[f"val_bn{nb}"] = accuracy(sub, data.x_val, data.y_val, device=dev)
            rows.append(r)
        result = {"rows": rows, "log": log}
    Path(a.out).write_text(json.dumps({"set": a.overrides, "epochs": a.epochs, "shift": a.shift, "wd": a.wd,
                                       "device": str(dev), "seconds": time.time() - t0, "result": result}))
    print("wrote", a.out, f"{time.time() - t0:.0f} s")


def summarise(folder: Path) -> None:
    """Stand-alone arms: spread and agreement; supernet arms: Kendall tau against their reference."""
    from scipy.stats import kendalltau

    def load(name):
        return json.loads((folder / f"{name}.json").read_text())

    stand = {p.stem[2:]: {r["g"]: r for r in load(p.stem)["result"]} for p in sorted(folder.glob("s_*.json"))}
    print(f"{'stand-alone arm':16s} {'val range':>13s} {'test spread':>11s} {'largest-smallest':>16s} "
          f"{'tau(params,val)':>15s} {'tau(val,test)':>13s}")
    for k, st in stand.items():
        r = list(st.values())
        v, t, p = (np.array([x[c] for x in r]) for c in ("val", "test", "params"))
        print(f"{k:16s} {v.min():.3f}..{v.max():.3f} {t.max() - t.min():11.3f} {t[-1] - t[0]:16.3f} "
              f"{kendalltau(p, v).statistic:15.2f} {kendalltau(v, t).statistic:13.2f}")
    for a, b in (("B30", "R16"), ("V3", "R16s")):
        if a in stand and b in stand:
            ks = list(stand[a])
            print(f"noise ceiling: tau between two seeds of {a} and {b}: "
                  f"{kendalltau([stand[a][k]['val'] for k in ks], [stand[b][k]['val'] for k in ks]).statistic:.2f}")
    print(f"\n{'supernet arm':16s} {'reference':>9s} " + " ".join(f"{'tau bn' + str(n):>8s}" for n in BN))
    for p in sorted(folder.glob("n_*.json")):
        k = p.stem[2:]
        ref = {"A": "A30", "B": "B30", "C": "C30"}.get(k[0], k)
        rows = load(p.stem)["result"]["rows"]
        sv = [stand[ref][r["g"]]["val"] for r in rows]
        print(f"{k:16s} {ref:>9s} " + " ".join(
            f"{kendalltau([r[f'val_bn{n}'] for r in rows], sv).statistic:8.2f}" for n in BN))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["standalone", "supernet", "summarise"])
    ap.add_argument("folder", nargs="?", type=Path, help="summarise: the folder of arm results")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, default=30, help="standalone: training epochs")
    ap.add_argument("--n", type=int, default=24, help="subnets")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--wd", type=float, default=3e-5, help="standalone: weight decay")
    ap.add_argument("--shift", type=int, default=0)
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.mode == "summarise":
        return summarise(a.folder or ROOT / "benchmarks" / "results" / "supernet_ablation")
    if not a.out:
        sys.exit("error: --out FILE is required")
    run(a)


if __name__ == "__main__":
    main()

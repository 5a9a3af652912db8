"""Seconds per supernet training epoch for several space settings, back to back on this machine.

Compares what a space change costs in pretraining independently of how fast the machine is at
the moment (a throttled or shared machine slows every setting alike). Uses the prepared data of
the last run (``evonas stage prepare``).

Usage:
  python benchmarks/supernet_epoch_time.py [--params params.yaml] [--set KEY=VALUE ...]
      [--epochs 2] [--rounds 2] --variant "space.width_multipliers=[1.0]" --variant "..."
"""

from __future__ import annotations

import argparse

from nas.config import load_config
from nas.data import load_prepared
from nas.supernet import train_supernet
from nas.training import torch_threads


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--variant", action="append", required=True, metavar="KEY=VALUE",
                    help="one setting to time (repeatable); each is timed once per round")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    for r in range(args.rounds):
        for v in args.variant:
            cfg = load_config(args.params, [*args.overrides, v, f"supernet.epochs={args.epochs}"])
            data = load_prepared(cfg.data.out_dir)
            with torch_threads():
                _, log = train_supernet(cfg, data)
            secs = [e["seconds"] for e in log]
            print(f"round {r + 1}  {v:40s} seconds per epoch: {', '.join(f'{s:.1f}' for s in secs)} "
                  f"(mean {sum(secs) / len(secs):.1f})", flush=True)


if __name__ == "__main__":
    main()

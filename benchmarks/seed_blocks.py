"""Is a difference between strategies on one set of seeds more than seed noise?

Reads ``evonas benchmark`` result CSVs (one row per strategy, seed and budget), splits the
seeds into consecutive blocks of ``--block`` seeds (the size of a recorded run, 20 by default)
and prints, per budget, each strategy's mean over every block, its overall mean ± standard
error, and in how many blocks each strategy has the best mean (a tie counts for each). A last
block with fewer seeds than ``--block`` is left out of the blocks. Example (140 held-out seeds)::

    evonas benchmark --table ../shared/benchdata/nb201_cifar10.csv --signal-column val_acc_12ep \\
      --report-column test_acc_200ep --cost-columns latency_raspi4_ms --budgets 25,50,100 \\
      --seeds 140 --first-seed 100 --strategies evonas-thompson,optuna-tpe --out heldout.csv
    python benchmarks/seed_blocks.py heldout.csv --block 20 --metric hv_fraction
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd


def block_means(df: pd.DataFrame, metric: str, block: int) -> pd.DataFrame:
    """Rows (strategy, budget, block) -> mean of ``metric`` over the block's seeds; only full blocks."""
    seeds = np.sort(df["seed"].unique())
    block_of = {s: i // block for i, s in enumerate(seeds)}
    d = df.assign(block=df["seed"].map(block_of))
    d = d[d["block"] < len(seeds) // block]  # full blocks only
    return d.groupby(["budget", "strategy", "block"], sort=True)[metric].mean().unstack("block")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+", help="results CSV(s) of evonas benchmark")
    ap.add_argument("--block", type=int, default=20, help="seeds per block (default 20)")
    ap.add_argument("--metric", default="hv_fraction", choices=["hv_fraction", "best_report"])
    args = ap.parse_args(argv)
    if args.block < 1:
        print(f"--block must be >= 1, got {args.block}", file=sys.stderr)
        return 2
    df = pd.concat([pd.read_csv(p) for p in args.csv], ignore_index=True)
    missing = {"strategy", "seed", "budget", args.metric} - set(df.columns)
    if missing:
        print(f"{', '.join(args.csv)}: missing column(s) {sorted(missing)}", file=sys.stderr)
        return 2
    df = df.dropna(subset=[args.metric])
    means = block_means(df, args.metric, args.block)
    if means.empty:
        print(f"no block of {args.block} seeds in the results", file=sys.stderr)
        return 2
    seeds = np.sort(df["seed"].unique())
    print(f"{args.metric}: seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}), "
          f"{means.shape[1]} blocks of {args.block} consecutive seeds\n")
    for budget, per in means.groupby(level="budget"):
        per = per.droplevel("budget")
        best = per.eq(per.max(axis=0), axis=1)  # strategy x block: has the block's best mean
        width = max(len(str(s)) for s in per.index)
        print(f"budget {budget}")
        for strategy, row in per.iterrows():
            vals = df[(df["budget"] == budget) & (df["strategy"] == strategy)][args.metric]
            se = vals.std(ddof=1) / np.sqrt(len(vals)) if len(vals) > 1 else float("nan")
            blocks = " ".join(f"{v:.5f}" for v in row)
            print(f"  {strategy:<{width}} mean {vals.mean():.5f} ± {se:.5f} (s.e., {len(vals)} seeds)  "
                  f"best in {int(best.loc[strategy].sum())}/{per.shape[1]} blocks  [{blocks}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

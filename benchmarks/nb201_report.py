"""Turn the CSVs written by benchmarks/nb201.sh into benchmarks/results/nb201.md.

Usage: python benchmarks/nb201_report.py [RESULTS_DIR] [OUT_MD]

The tables are regenerated from the CSVs; an existing OUT_MD keeps its hand-written part
(from "## How these files were made" on).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

SETTINGS = [
    ("single_test.csv", "Single objective, signal = report = `test_acc_200ep`",
     "--signal-column test_acc_200ep --report-column test_acc_200ep"),
    ("single_val12.csv", "Single objective, signal = `val_acc_12ep` (cheap, noisy), report = `test_acc_200ep`",
     "--signal-column val_acc_12ep --report-column test_acc_200ep"),
    ("multi_latency.csv", "Multi-objective: signal = `val_acc_12ep`, report = `test_acc_200ep`, cost = "
     "`latency_raspi4_ms`", "--signal-column val_acc_12ep --report-column test_acc_200ep "
     "--cost-columns latency_raspi4_ms"),
]

#: Where the hand-written part of the report starts; everything from it on is kept on a rerun.
MANUAL = "## How these files were made"


def table(df: pd.DataFrame, column: str, fmt: str) -> str:
    g = df.groupby(["strategy", "budget"], sort=False)[column].agg(["mean", "std"]).reset_index()
    budgets = sorted(df.budget.unique())
    lines = ["| strategy | " + " | ".join(str(b) for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    best = {b: g[g.budget == b]["mean"].max() for b in budgets}
    for s in df.strategy.unique():
        cells = []
        for b in budgets:
            r = g[(g.strategy == s) & (g.budget == b)].iloc[0]
            cell = f"{r['mean']:{fmt}} ± {r['std']:{fmt}}"
            cells.append(f"**{cell}**" if r["mean"] == best[b] else cell)
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/nb201")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "benchmarks/results/nb201.md")
    parts = ["# NAS-Bench-201 (CIFAR-10) benchmark", "",
             "Made by `bash benchmarks/nb201.sh` (then `python benchmarks/nb201_report.py`) on the development",
             "machine (2 cores). Budgets count distinct evaluations; 20 seeds (0-19) per strategy;",
             "mean ± std over seeds; the best mean per budget in bold. Raw rows: `nb201/*.csv`.", ""]
    for fname, title, args in SETTINGS:
        path = results / fname
        if not path.is_file():
            continue
        df = pd.read_csv(path)
        parts += [f"## {title}", "", "```", "evonas benchmark --table ../shared/benchdata/nb201_cifar10.csv "
                  f"{args} --budgets 25,50,100,200,300 --seeds 20 --strategies all --out {path}", "```", "",
                  "best_report (test accuracy, %, of the incumbent chosen by the signal):", "",
                  table(df, "best_report", ".3f"), ""]
        if df.hv_fraction.notna().any():
            parts += ["hv_fraction (hypervolume of the evaluated set / of the table's true front):", "",
                      table(df, "hv_fraction", ".4f"), ""]
    text = "\n".join(parts) + "\n"
    if out.is_file():  # keep the hand-written sections (how the files were made, targets, notes)
        old = out.read_text()
        if MANUAL in old:
            text += old[old.index(MANUAL):]
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

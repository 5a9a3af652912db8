"""SEP crossover against standard crossover and mutation only, in one regularised evolution loop.

Qiu & Miikkulainen (2023) report that Shortest-Edit-Path (SEP) crossover beats both standard
crossover and mutation-only regularised evolution on NAS-Bench-201. This script replays that
comparison on the tabular NAS-Bench-201 CIFAR-10 results (``--table``), with the three
variants inside the *same* regularised (aging) evolution loop (Real et al., 2019):

1. sample ``--population`` (20) distinct random cells and evaluate them;
2. repeat until ``budget`` distinct cells have been evaluated:
   * mutation only: the child is ``NB201Space.mutate`` of the winner of a tournament
     (``--tournament`` (5) members drawn without replacement; the best by the signal wins);
   * ``sep`` / ``standard``: the child is the crossover of the winners of two tournaments (the
     second drawn from the population minus the first winner, so the parents differ) by SEP
     crossover on the cell graphs (``NB201Space.sep_crossover``; uniform crossover when SEP
     finds no valid child) or by uniform crossover; then it is mutated with probability
     ``--p-mut`` (0.5: half of the children are pure crossover, so the operator matters, half
     also get the mutation every variant has, so crossover variants keep exploring);
   * any child that repeats an evaluated cell is mutated again until it is new (duplicates are
     never re-evaluated and never count towards the budget);
   * the child joins the population and the oldest member leaves.

Evaluating a cell looks its row up in the table: ``--signal`` (``val_acc_12ep``, the 12-epoch
validation accuracy a real search would see, or ``test_acc_200ep``, an oracle) drives
selection and picks the incumbent; the incumbent is reported by ``--report``
(``test_acc_200ep``). One run per seed goes to the largest budget and the incumbent is read off
at every budget in ``--budgets``. Seeds are shared across variants, and the initial population
only depends on the seed, so the variants are compared paired. All randomness of a run comes
from ``np.random.default_rng(seed)``.

Printed: per budget, mean ± std (standard error) over seeds of the incumbent's report for each
variant side by side, then the paired differences SEP - standard and SEP - mutation (mean ±
standard error), and how often SEP fell back to uniform crossover. ``--json PATH`` writes
``{"sep": {budget: mean}, "standard": {...}, "mutation": {...}}``.

Usage: python benchmarks/crossover.py [--table CSV] [--signal val_acc_12ep] [--report test_acc_200ep]
         [--budgets 25,50,100,200,300] [--seeds 20] [--population 20] [--tournament 5]
         [--p-mut 0.5] [--json benchmarks/results/crossover_val.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.genome import Genome  # noqa: E402
from nas.spaces.nb201 import NB201Space, parse_arch  # noqa: E402

VARIANTS: tuple[str, ...] = ("sep", "standard", "mutation")
COLUMNS: tuple[str, ...] = ("val_acc_12ep", "test_acc_200ep")
DEFAULT_TABLE = ROOT.parent / "shared" / "benchdata" / "nb201_cifar10.csv"


def load_table(path: Path, signal: str, report: str) -> dict[Genome, tuple[float, float]]:
    """``genome -> (signal, report)`` for every row of the NAS-Bench-201 table."""
    import pandas as pd

    if not path.exists():
        raise SystemExit(f"table not found: {path}")
    df = pd.read_csv(path)
    missing = [c for c in ("arch_str", signal, report) if c not in df.columns]
    if missing:
        raise SystemExit(f"table {path} lacks column(s) {', '.join(missing)}; has {', '.join(df.columns)}")
    table = {parse_arch(s): (float(x), float(y)) for s, x, y in zip(df["arch_str"], df[signal], df[report])}
    if len(table) != len(df):
        raise SystemExit(f"table {path} has duplicate architectures")
    return table


@dataclass
class RunStats:
    """What one run returns: the incumbent's report after each evaluation, and counters."""

    trace: list[float] = field(default_factory=list)
    crossovers: int = 0
    sep_fallbacks: int = 0
    duplicate_fixes: int = 0


def run(variant: str, seed: int, table: dict[Genome, tuple[float, float]], budget: int,
        population: int = 20, tournament: int = 5, p_mut: float = 0.5) -> RunStats:
    """One regularised-evolution run of ``variant`` to ``budget`` distinct evaluations."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if not 1 <= tournament <= population:
        raise ValueError(f"tournament must be in 1..population ({population}), got {tournament}")
    rng = np.random.default_rng(seed)
    space = NB201Space(crossover="sep" if variant == "sep" else "uniform")
    stats = RunStats()
    evaluated: dict[Genome, float] = {}
    best = (-np.inf, np.nan)

    def evaluate(g: Genome) -> None:
        nonlocal best
        sig, rep = table[g]
        evaluated[g] = sig
        if sig > best[0]:
            best = (sig, rep)
        stats.trace.append(best[1])

    def select(pop: list[Genome]) -> Genome:
        idx = rng.choice(len(pop), size=min(tournament, len(pop)), replace=False)
        return max((pop[i] for i in idx), key=lambda g: evaluated[g])  # first best on ties

    pop: deque[Genome] = deque()
    while len(pop) < population and len(evaluated) < budget:
        g = space.sample(rng)
        if g not in evaluated:
            evaluate(g)
            pop.append(g)
    while len(evaluated) < budget:
        members = list(pop)
        first = select(members)
        if variant == "mutation":
            child = space.mutate(first, rng)
        else:
            second = select([g for g in members if g != first])
            stats.crossovers += 1
            if variant == "sep":
                child = space.sep_crossover(first, second, rng)
                if child is None:
                    stats.sep_fallbacks += 1
                    child = space.uniform_crossover(first, second, rng)
            else:
                child = space.uniform_crossover(first, second, rng)
            if rng.random() < p_mut:
                child = space.mutate(child, rng)
        while child in evaluated:
            stats.duplicate_fixes += 1
            child = space.mutate(child, rng)
        evaluate(child)
        pop.append(child)
        pop.popleft()
    return stats


def summarise(values: np.ndarray) -> tuple[float, float, float]:
    """mean, std (ddof 1) and standard error over seeds."""
    n = len(values)
    std = float(np.std(values, ddof=1)) if n > 1 else 0.0
    return float(np.mean(values)), std, std / np.sqrt(n) if n else 0.0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--signal", default="val_acc_12ep", choices=COLUMNS,
                    help="column that drives selection and picks the incumbent")
    ap.add_argument("--report", default="test_acc_200ep", choices=COLUMNS,
                    help="column the incumbent is reported by")
    ap.add_argument("--budgets", default="25,50,100,200,300",
                    help="comma-separated numbers of distinct evaluations")
    ap.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1, shared by all variants")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--tournament", type=int, default=5)
    ap.add_argument("--p-mut", type=float, default=0.5,
                    help="probability that a crossover child is also mutated")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    try:
        budgets = sorted({int(b) for b in args.budgets.split(",") if b.strip()})
    except ValueError:
        raise SystemExit(f"--budgets must be comma-separated integers, got {args.budgets!r}") from None
    if not budgets or budgets[0] < 1:
        raise SystemExit(f"--budgets must be positive, got {args.budgets!r}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise SystemExit(f"unknown variant(s) {', '.join(bad)}; expected {', '.join(VARIANTS)}")
    if args.seeds < 1:
        raise SystemExit(f"--seeds must be >= 1, got {args.seeds}")
    if not 0.0 <= args.p_mut <= 1.0:
        raise SystemExit(f"--p-mut must be in [0, 1], got {args.p_mut}")

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    table = load_table(args.table, args.signal, args.report)
    top = max(budgets)
    results: dict[str, np.ndarray] = {}
    stats: dict[str, list[RunStats]] = {v: [] for v in variants}
    seconds: dict[str, float] = {v: 0.0 for v in variants}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True)) as progress:
        task = progress.add_task("runs", total=len(variants) * args.seeds)
        for v in variants:
            rows = []
            for seed in range(args.seeds):
                progress.update(task, description=f"{v} seed {seed}")
                t0 = time.perf_counter()
                st = run(v, seed, table, top, args.population, args.tournament, args.p_mut)
                seconds[v] += time.perf_counter() - t0
                stats[v].append(st)
                rows.append([st.trace[b - 1] for b in budgets])
                progress.advance(task)
            results[v] = np.array(rows)

    print(f"NAS-Bench-201 CIFAR-10 ({args.table.name}), regularised evolution: population "
          f"{args.population}, tournament {args.tournament}, p_mut {args.p_mut}, {args.seeds} seeds")
    print(f"selection signal {args.signal}; incumbent (best by signal) reported by {args.report}; "
          f"best possible {args.report} of the table's best-by-signal cell: "
          f"{max(table.values())[1]:.2f}, table max {max(r for _, r in table.values()):.2f}")
    print("mean ± std (standard error) over seeds\n")
    head = f"{'budget':>6} | " + " | ".join(f"{v:^24}" for v in variants)
    print(head)
    print("-" * len(head))
    for k, b in enumerate(budgets):
        cells = []
        for v in variants:
            m, s, se = summarise(results[v][:, k])
            cells.append(f"{m:7.2f} ± {s:4.2f} ({se:4.2f})  ")
        print(f"{b:>6} | " + " | ".join(f"{c:^24}" for c in cells))
    if "sep" in variants and len(variants) > 1:
        others = [v for v in variants if v != "sep"]
        print("\npaired difference (same seeds), mean ± standard error")
        print(f"{'budget':>6} | " + " | ".join(f"{'sep - ' + v:^18}" for v in others))
        for k, b in enumerate(budgets):
            cells = []
            for v in others:
                m, _s, se = summarise(results["sep"][:, k] - results[v][:, k])
                cells.append(f"{m:+6.2f} ± {se:4.2f}")
            print(f"{b:>6} | " + " | ".join(f"{c:^18}" for c in cells))
    print()
    for v in variants:
        st = stats[v]
        line = f"{v}: {seconds[v]:.1f} s for {args.seeds} runs; duplicate children re-mutated: " \
               f"{sum(s.duplicate_fixes for s in st)}"
        if v == "sep":
            n = sum(s.crossovers for s in st)
            line += f"; SEP fell back to uniform crossover in {sum(s.sep_fallbacks for s in st)} of {n}"
        print(line)

    out = {v: {str(b): float(np.mean(results[v][:, k])) for k, b in enumerate(budgets)} for v in variants}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return out


if __name__ == "__main__":
    main()

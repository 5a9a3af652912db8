"""How isolated the Pareto-optimal cells of NAS-Bench-201 are, in the neighbourhood evolution searches.

The scale benchmark (``scale.py``) asks whether asynchronous search reaches generational search's
final hypervolume on every seed. On a discrete table that hypervolume moves in steps: a run reaches
the full front only by evaluating every one of the table's own Pareto-optimal cells. This measures
how hard that is for a search that moves by mutation, independently of any runner or strategy:

- for each of the table's Pareto-optimal cells (in searched error and cost, both minimised): the
  non-domination layer of its best neighbour at one and at two edges (layer 0 is the front), and
  how many other front cells lie within one or two edges;
- Pareto local search (Paquete et al., 2004), a search that exploits the neighbourhood to the end:
  from ``--starts`` random cells, every neighbour at one edge of each non-dominated cell found is
  evaluated until none is left, then every neighbour at two edges; per seed, the cells it evaluated,
  the front cells it found and the hypervolume it reached against the full front's;
- how many front cells a uniform random sample of the same size would find (expected).

Usage: python benchmarks/nb201_front.py [--table PATH] [--signal val_acc_12ep] [--cost latency_raspi4_ms]
         [--seeds 10] [--starts 100] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scale import DEFAULT_TABLE, Front2D, signal_error, table_front  # noqa: E402


def load(table: Path, signal: str, cost: str):
    import pandas as pd

    from nas.spaces.nb201 import parse_arch

    df = pd.read_csv(table)
    missing = [c for c in ("arch_str", signal, cost) if c not in df.columns]
    if missing:
        raise SystemExit(f"{table}: missing column(s) {missing}; it has {list(df.columns)}")
    codes = [parse_arch(str(s)).values for s in df["arch_str"]]
    c = df[cost].to_numpy(float)
    return codes, signal_error(df[signal].to_numpy(float)), c / c.max()


def neighbours(code: tuple[int, ...], index: dict, n_ops: int, edges: int) -> list[int]:
    """Rows of the cells that differ from ``code`` in exactly ``edges`` edges (1 or 2)."""
    out = []
    for es in itertools.combinations(range(len(code)), edges):
        for ops in itertools.product(*[[o for o in range(n_ops) if o != code[e]] for e in es]):
            d = list(code)
            for e, o in zip(es, ops):
                d[e] = o
            j = index.get(tuple(d))
            if j is not None:
                out.append(j)
    return out


def layers(err: np.ndarray, cost: np.ndarray) -> np.ndarray:
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    rank = np.empty(len(err), dtype=int)
    for k, front in enumerate(NonDominatedSorting().do(np.column_stack([err, cost]))):
        rank[front] = k
    return rank


def hv(rows, err, cost) -> float:
    f = Front2D()
    for i in rows:
        f.add(float(err[i]), float(cost[i]))
    return f.hv()


def pareto_local_search(rng, start: list[int], codes, index, n_ops, err, cost) -> set[int]:
    seen, done = set(start), {1: set(), 2: set()}
    while True:
        rows = np.array(sorted(seen))
        front = rows[table_front(err[rows], cost[rows])]
        for edges in (1, 2):
            todo = [i for i in front if i not in done[edges]]
            if todo:
                i = int(todo[int(rng.integers(len(todo)))])
                done[edges].add(i)
                seen.update(neighbours(codes[i], index, n_ops, edges))
                break
        else:
            return seen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--signal", default="val_acc_12ep")
    ap.add_argument("--cost", default="latency_raspi4_ms")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if not a.table.is_file():
        ap.error(f"table {a.table} not found (give --table: a NAS-Bench-201 CSV)")
    if a.seeds < 1 or a.starts < 1:
        ap.error("--seeds and --starts must be at least 1")
    codes, err, cost = load(a.table, a.signal, a.cost)
    index = {c: i for i, c in enumerate(codes)}
    n_ops = max(max(c) for c in codes) + 1
    opt = table_front(err, cost)
    on_front = set(opt)
    full = hv(range(len(err)), err, cost)
    rank = layers(err, cost)
    print(f"{len(codes)} cells; {len(opt)} on the front (searched error against cost); full front hypervolume {full:.5f}")
    cells = []
    print(f"{'cell':>6} {'signal':>7} {'cost':>7} {'best layer 1 edge':>18} {'2 edges':>8} "
          f"{'front cells within 1':>21} {'within 2':>9}")
    for i in opt:
        n1, n2 = neighbours(codes[i], index, n_ops, 1), neighbours(codes[i], index, n_ops, 2)
        row = {"row": i, "error": float(err[i]), "cost": float(cost[i]),
               "best_layer_1_edge": int(rank[n1].min()), "best_layer_2_edges": int(rank[n2].min()),
               "front_within_1": int(sum(j in on_front for j in n1)),
               "front_within_2": int(sum(j in on_front for j in n1 + n2))}
        cells.append(row)
        print(f"{i:>6} {1 - row['error']:>7.4f} {row['cost']:>7.4f} {row['best_layer_1_edge']:>18} "
              f"{row['best_layer_2_edges']:>8} {row['front_within_1']:>21} {row['front_within_2']:>9}")
    isolated = sum(c["front_within_2"] == 0 for c in cells)
    print(f"front cells with no other front cell within two edges: {isolated} of {len(opt)}")
    runs = []
    for seed in range(a.seeds):
        rng = np.random.default_rng(seed)
        start = rng.choice(len(codes), a.starts, replace=False).tolist()
        seen = pareto_local_search(rng, start, codes, index, n_ops, err, cost)
        found = len(on_front & seen)
        runs.append({"seed": seed, "evaluated": len(seen), "front_found": found, "hv": hv(seen, err, cost),
                     "front_missed": sorted(on_front - seen),
                     "random_expected_front_found": len(opt) * len(seen) / len(codes)})
        r = runs[-1]
        print(f"Pareto local search, seed {seed}: {r['evaluated']} cells evaluated, {found} of {len(opt)} front cells "
              f"(a random sample that size: {r['random_expected_front_found']:.1f}), hypervolume {r['hv']:.5f} "
              f"(full {full:.5f}); missed cells {r['front_missed']}")
    full_found = sum(r["front_found"] == len(opt) for r in runs)
    missed = {i: sum(i in r["front_missed"] for r in runs) for i in opt}
    print("front cells Pareto local search missed, on how many seeds: "
          + ", ".join(f"{i}: {n}" for i, n in sorted(missed.items(), key=lambda kv: -kv[1]) if n))
    print(f"Pareto local search found the whole front on {full_found} of {len(runs)} seeds")
    out = {"settings": {"table": str(a.table), "signal": a.signal, "cost": a.cost, "seeds": a.seeds,
                        "starts": a.starts, "command": "python benchmarks/nb201_front.py "
                        + " ".join(argv if argv is not None else sys.argv[1:])},
           "front_size": len(opt), "full_hv": full, "front_cells": cells, "isolated_within_2": isolated,
           "pareto_local_search": runs, "pls_found_whole_front": full_found}
    if a.json:
        tmp = a.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

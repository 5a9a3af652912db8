"""Candidates per Dask task (``evaluation.chunk_size``): throughput of a search whose evaluations
take milliseconds, and proof that chunking changes nothing but the time.

Runs the same generational search (default: the weight-agnostic digits example, population 128)
once per chunk size on a fresh Dask LocalCluster and prints, side by side: wall seconds of the
search stage, networks per second, the workers' busy fraction, and whether the archive (every
candidate, in order, with its metrics and seed) is identical to the one of chunk size 1.

    .venv/bin/python benchmarks/chunking.py [--chunks 1,8,32] [--set KEY=VALUE ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(params: str, sets: list[str], chunk: int, workdir: Path) -> dict:
    from nas.config import load_config
    from nas.runners import read_populations
    from nas.stages import prepare_data, run_search, write_prepared

    cfg = load_config(params, [*sets, f"evaluation.chunk_size={chunk}", f"data.out_dir={workdir / 'data'}",
                               f"search.out_dir={workdir / f'search{chunk}'}",
                               f"selection.reports_dir={workdir / f'reports{chunk}'}"])
    if not (workdir / "data" / "meta.json").exists():
        write_prepared(cfg, prepare_data(cfg), 0.0)
    t0 = time.perf_counter()
    summary = run_search(cfg, resume=False, log=lambda *_: None)
    wall = time.perf_counter() - t0
    df = read_populations(Path(cfg.search.out_dir) / "populations")
    metric_cols = sorted(c for c in df.columns if c in set(cfg.search.objectives) | {"max_score", "min_score"})
    archive = [(r["candidate_id"], r["generation"], r["status"], r["seed"], *[r[c] for c in metric_cols])
               for r in df.to_dict("records")]
    return {"chunk_size": chunk, "seconds": wall, "networks": summary["n_evaluated"],
            "networks_per_second": summary["n_evaluated"] / wall, "workers": summary["workers"],
            "worker_utilization": summary["worker_utilization"], "strategy_seconds": summary["strategy_seconds"],
            "archive": archive}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "examples" / "wann_digits.yaml"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--chunks", default="1,8,32", help="chunk sizes to compare (the first is the reference)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sets = ["search.population=128", "search.generations=40", *args.set]
    chunks = [int(c) for c in args.chunks.split(",")]
    os.environ.setdefault("DO_NOT_TRACK", "1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="evonas-chunking-") as tmp:
        for c in chunks:
            rows.append(run(args.params, sets, c, Path(tmp)))
            r = rows[-1]
            print(f"chunk {c}: {r['networks']} networks in {r['seconds']:.1f} s", flush=True)
    ref = rows[0]["archive"]
    print(f"\n{Path(args.params).name} {' '.join(sets)}; {rows[0]['workers']} Dask workers")
    print(f"{'chunk_size':>10} {'seconds':>8} {'networks/s':>11} {'speed-up':>9} {'busy':>6} {'same archive':>13}")
    for r in rows:
        r["speedup"] = rows[0]["seconds"] / r["seconds"]
        r["same_archive_as_first"] = r["archive"] == ref
        busy = f"{r['worker_utilization']:.2f}" if r["worker_utilization"] is not None else "-"
        print(f"{r['chunk_size']:>10} {r['seconds']:>8.1f} {r['networks_per_second']:>11.1f} {r['speedup']:>8.2f}x "
              f"{busy:>6} {str(r['same_archive_as_first']):>13}")
    if args.json:
        from nas.io import atomic_write_json

        atomic_write_json(args.json, {"params": Path(args.params).relative_to(ROOT).as_posix()
                                      if Path(args.params).resolve().is_relative_to(ROOT) else args.params,
                                      "overrides": sets,
                                      "runs": [{k: v for k, v in r.items() if k != "archive"} for r in rows]})
    if not all(r["same_archive_as_first"] for r in rows):
        sys.exit("chunking changed the archive")


if __name__ == "__main__":
    main()

"""How fast a WANN search scores and breeds one generation of grown networks.

Reads a population snapshot of a finished WANN run (``<search.out_dir>/populations/gen_N.parquet``)
and its prepared data, then, with the code on ``PYTHONPATH`` (so two commits can be compared on
the same networks):

- scores every network of the snapshot at the six shared weights on a 2-worker Dask LocalCluster,
  as the search does (``evaluation.chunk_size`` 16), ``--repeats`` times: wall seconds per
  generation and the workers' busy seconds;
- mutates every network once, as ``ask`` does (milliseconds per child).

Usage:
  python benchmarks/wann_speed.py --population RUN/artifacts/wann_digits/search/populations/gen_1075.parquet \\
      --data RUN/data/wann_digits [--params examples/wann_digits.yaml] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--population", type=Path, required=True, help="a gen_N.parquet snapshot of a WANN run")
    ap.add_argument("--data", type=Path, required=True, help="the run's prepared data folder (data.out_dir)")
    ap.add_argument("--params", type=Path, default=ROOT / "examples/wann_digits.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    for path in (args.population, args.data, args.params):
        if not path.exists():
            sys.exit(f"{path}: not found")

    import numpy as np
    import pandas as pd

    from nas.config import load_config
    from nas.evaluators.dask import DaskPool
    from nas.evaluators.wann import WannEvaluator
    from nas.genome import Genome
    from nas.spaces.wann import WANNSpace

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cfg = load_config(args.params, [])
    df = pd.read_parquet(args.population)
    genomes = [Genome((), "wann", s) for s in df["genome"]]
    spec = json.loads(genomes[0].spec)
    evaluator = WannEvaluator(json.dumps(cfg.evaluation.wann.model_dump(), sort_keys=True), str(args.data), 0)
    w = cfg.space.wann
    space = WANNSpace(spec["inputs"], spec["outputs"], w.activations, w.init_connection_prob, w.out_act, w.mutation,
                      w.max_hidden)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for g in genomes:
        space.mutate(g, rng)
    mutate_ms = (time.perf_counter() - t) / len(genomes) * 1e3

    walls, busy = [], []
    with DaskPool(workers=args.workers, threads_per_worker=1, chunk_size=cfg.evaluation.chunk_size) as pool:
        pool.evaluate(evaluator, genomes[:32])  # workers load the data
        for _ in range(args.repeats):
            t = time.perf_counter()
            results = pool.evaluate(evaluator, genomes)
            walls.append(time.perf_counter() - t)
            busy.append(sum(r.eval_seconds for r in results))
            bad = [r for r in results if not r.ok]
            if bad:
                sys.exit(f"{len(bad)} networks failed: {bad[0].error}")
    conns = float(df["connections"].mean())
    row = {"networks": len(genomes), "mean_connections": conns, "workers": args.workers,
           "generation_wall_seconds": statistics.median(walls), "busy_seconds": statistics.median(busy),
           "ms_per_network": statistics.median(busy) / len(genomes) * 1e3, "mutate_ms": mutate_ms,
           "population": str(args.population)}
    print(f"{len(genomes)} networks, {conns:.0f} connections on average, {args.workers} workers")
    print(f"{'scoring one generation (median of %d), wall s' % args.repeats:<52}{row['generation_wall_seconds']:>8.2f}")
    print(f"{'workers busy, s':<52}{row['busy_seconds']:>8.2f}")
    print(f"{'per network, ms (busy)':<52}{row['ms_per_network']:>8.2f}")
    print(f"{'one mutation, ms':<52}{mutate_ms:>8.2f}")
    if args.json:
        from nas.io import atomic_write_json

        atomic_write_json(args.json, row)


if __name__ == "__main__":
    main()

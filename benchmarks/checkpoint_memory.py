"""Peak memory and time of loading a search's checkpoint, and of replaying it into a fresh strategy.

What resuming a long search costs before its first new generation: ``Checkpointer.load`` reads
the run folder's logs (asked genomes and results), and ``replay`` re-makes every recorded ask and
tell on a strategy built from the same params, checking that it proposes the same candidates and
ends in the same generator state. Reads the run folder only; writes nothing.

Usage:
  python benchmarks/checkpoint_memory.py RUN_DIR --params examples/wann_digits.yaml [--set KEY=VALUE ...]
      [--replay]

RUN_DIR is a folder under the search stage's ``search-runs/`` (it holds ``checkpoint.json``).
The logs are loaded under the checkpoint's own fingerprint; give the params and ``--set``s of the
run, or the replay stops at the first call that does not repeat.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--params", type=Path, required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--replay", action="store_true", help="also replay the log into a fresh strategy")
    a = ap.parse_args(argv)
    if not (a.run_dir / "checkpoint.json").is_file():
        ap.error(f"{a.run_dir} holds no checkpoint.json (give a folder under search-runs/)")
    from nas.checkpoint import CheckpointError, Checkpointer, replay
    from nas.config import ConfigError, load_config
    from nas.factory import build_space, build_strategy

    try:
        cfg = load_config(a.params, a.overrides)
    except ConfigError as exc:
        ap.error(str(exc))
    t = time.perf_counter()
    try:
        fingerprint = json.loads((a.run_dir / "checkpoint.json").read_text())["fingerprint"]
        doc = Checkpointer(a.run_dir, fingerprint).load()
    except (CheckpointError, ValueError, KeyError) as exc:
        ap.error(f"{a.run_dir}: {exc}")
    if doc is None:
        ap.error(f"{a.run_dir}: the checkpoint could not be loaded")
    print(f"load: {len(doc['events'])} calls, {len(doc['results'])} results in {time.perf_counter() - t:.0f} s; "
          f"peak memory {peak_gb():.2f} GB", flush=True)
    if a.replay:
        t = time.perf_counter()
        rec = replay(build_strategy(cfg, build_space(cfg), []), doc["events"], doc["results"], doc.get("rng_state"))
        print(f"replay: {len(rec.events)} calls re-made (same candidates and generator state) in "
              f"{time.perf_counter() - t:.0f} s; peak memory {peak_gb():.2f} GB; {len(rec.outstanding())} outstanding",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

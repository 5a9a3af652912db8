"""Choose the control tuner's settings on validation rollouts (issue 18): tune one selected WANN
with CMA-ES under the given settings and print its mean return on rollouts that neither the
tuning's own validation, the test nor the held-out figures use.

    .venv/bin/python benchmarks/wann_tuner_choice.py --card scratch/bench/swingup/artifacts/wann_swingup/select/models/b5473f0bc9e2.json \\
        --data-dir scratch/bench/swingup/data/wann_swingup --iterations 600 --sigma 0.2 --episodes 8

The settings recorded in ``benchmarks/results/README.md`` (swing-up) were chosen with it; the
test and held-out figures come from ``benchmarks/wann.py`` afterwards.
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


def main() -> None:
    from nas.config import load_config
    from nas.genome import Genome, canonical_json
    from nas.wann.select import _split_seed
    from nas.wann.tasks import make_task
    from nas.wann.tune import cmaes, policy_returns

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--card", type=Path, required=True, help="a selected network's model card (JSON)")
    ap.add_argument("--params", type=Path, default=ROOT / "examples" / "wann_swingup.yaml")
    ap.add_argument("--data-dir", default="data/wann_swingup", help="the run's data.out_dir (control tasks ignore it)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--popsize", type=int, default=0, help="0: cma's default")
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--rollouts", type=int, default=32, help="selection rollouts the settings are compared on")
    a = ap.parse_args()
    card = json.loads(a.card.read_text())
    cfg = load_config(a.params)
    task = make_task(cfg.evaluation.wann, a.data_dir)
    spec = card["genome"]
    vs = _split_seed(cfg.seed, Genome((), "wann", canonical_json(spec)), "val")
    t0 = time.time()
    w = cmaes(task, spec, card["best_shared_weight"], a.iterations, a.sigma, a.popsize or None, a.episodes,
              card["seed"], val_seed=vs, val_rollouts=cfg.evaluation.wann.rollouts)
    # vs + 7: a seed of its own, so the settings are compared on episodes the tuning never saw
    sel = policy_returns(task, spec, w, vs + 7, a.rollouts)
    base = policy_returns(task, spec, np.array(card["tuned_weight_values"]), vs + 7, a.rollouts)
    print(f"iterations {a.iterations} sigma {a.sigma} popsize {a.popsize or 'default'} episodes {a.episodes}: "
          f"selection return {sel.mean():.1f} ± {sel.std():.1f} (the card's tuned weights: {base.mean():.1f}); "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

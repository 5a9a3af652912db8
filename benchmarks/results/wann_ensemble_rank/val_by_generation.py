"""Validation only (chooses between search scores; never reads a test split): for generations 250,
500, ..., the network with the best search score among those evaluated so far (SCORE: mean_score or
ensemble_score, ties: fewer connections), scored on the validation images: its mean accuracy over
the shared weights and its ensemble's accuracy. Usage, from the checkout:
  python benchmarks/results/wann_ensemble_rank/val_by_generation.py RUN SCORE SET [SET ...]"""
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.getcwd())
from nas.config import load_config
from nas.genome import Genome
from nas.wann.network import compile_plan
from nas.wann.select import task_and_space
from nas.wann.tasks import accuracies, ensemble_accuracy

run, score, sets = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
here = os.getcwd()
os.chdir(run)
cfg = load_config(str(Path(here, "examples/wann_digits.yaml")), sets)
task, space = task_and_space(cfg)
w = np.array(cfg.evaluation.wann.weights)
xv, yv = task.split("val")
pops = Path(cfg.search.out_dir) / "populations"
best = None
print(f"best by {score}")
print(f"generation  connections  {score:>14s}  val_mean_acc  val_ensemble")
for gen in range(0, cfg.search.generations + 1):
    f = pops / f"gen_{gen:03d}.parquet"
    df = pd.read_parquet(f, columns=["genome", score, "connections", "status"])
    df = df[df.status == "ok"].sort_values([score, "connections"], ascending=[False, True])
    top = df.iloc[0]
    if best is None or top[score] > best[score]:
        best = top
    if gen and gen % 250 == 0:
        plan = compile_plan(space.spec(Genome.from_json(best.genome, space.name)))
        print(f"{gen:10d}  {int(best.connections):11d}  {best[score]:14.4f}  "
              f"{accuracies(plan, xv, yv, w).mean():12.3f}  {ensemble_accuracy(plan, xv, yv, w):12.3f}", flush=True)

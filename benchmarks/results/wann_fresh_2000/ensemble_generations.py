"""Diagnostic (after seed 7's outcome; chooses nothing): does the validation ensemble of the search's
best network keep rising with generations? For generations 250, 500, ..., the network with the best
search score (mean log-likelihood over the shared weights) among those evaluated so far, scored on
validation only. Usage, from the checkout:
  python benchmarks/results/wann_fresh_2000/ensemble_generations.py RUN SET [SET ...]"""
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

run, sets = Path(sys.argv[1]), sys.argv[2:]
here = os.getcwd()
os.chdir(run)
cfg = load_config(str(Path(here, "examples/wann_digits.yaml")), sets)
task, space = task_and_space(cfg)
w = np.array(cfg.evaluation.wann.weights)
xv, yv = task.split("val")
pops = Path(cfg.search.out_dir) / "populations"
best = None
print("generation  connections  search_mean_score  val_mean_acc  val_ensemble")
for gen in range(0, cfg.search.generations + 1):
    f = pops / f"gen_{gen:03d}.parquet"
    df = pd.read_parquet(f, columns=["genome", "mean_score", "connections", "status"])
    df = df[df.status == "ok"].sort_values(["mean_score", "connections"], ascending=[False, True])
    top = df.iloc[0]
    if best is None or top.mean_score > best.mean_score:
        best = top
    if gen and gen % 250 == 0:
        plan = compile_plan(space.spec(Genome.from_json(best.genome, space.name)))
        print(f"{gen:10d}  {int(best.connections):11d}  {best.mean_score:17.4f}  "
              f"{accuracies(plan, xv, yv, w).mean():12.3f}  {ensemble_accuracy(plan, xv, yv, w):12.3f}")

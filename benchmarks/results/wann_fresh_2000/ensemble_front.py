"""Diagnostic: over the final front of a finished WANN digits run, does the validation ensemble
predict the test ensemble, and what would choosing by it have given? (post hoc, after
seed 7's figures were known; it chooses nothing). Usage, from the checkout:
  python benchmarks/results/wann_fresh_2000/ensemble_front.py RUN SET [SET ...]
with the run's --set overrides, e.g. seed=7 search.population=256 search.generations=2000."""
import os, sys
from pathlib import Path
import numpy as np
from scipy.stats import spearmanr
sys.path.insert(0, os.getcwd())
from nas.config import load_config
from nas.genome import Genome
from nas.wann.select import front_table, task_and_space
from nas.wann.network import compile_plan
from nas.wann.tasks import ensemble_accuracy, accuracies
run, sets = Path(sys.argv[1]), sys.argv[2:]
here = os.getcwd(); os.chdir(run)
cfg = load_config(str(Path(here, "examples/wann_digits.yaml")), sets)
task, space = task_and_space(cfg)
_, front = front_table(cfg)
w = np.array(cfg.evaluation.wann.weights)
xv, yv = task.split("val"); xt, yt = task.split("test")
rows = []
for r in front.head(150).to_dict("records"):
    g = Genome.from_json(r["genome"], space.name); plan = compile_plan(space.spec(g))
    rows.append((r["candidate_id"], r["connections"], accuracies(plan, xv, yv, w).mean(), ensemble_accuracy(plan, xv, yv, w),
                 accuracies(plan, xt, yt, w).mean(), ensemble_accuracy(plan, xt, yt, w)))
a = np.array([x[1:] for x in rows], float)
print("front networks scored:", len(rows))
print("spearman val-mean vs test-ens %.3f, val-ens vs test-ens %.3f" % (spearmanr(a[:,1], a[:,4])[0], spearmanr(a[:,2], a[:,4])[0]))
i = max(range(len(rows)), key=lambda i: (a[i,1], -a[i,0])); j = max(range(len(rows)), key=lambda i: (a[i,2], -a[i,0]))
for name, k in (("best val mean (current rule)", i), ("best val ensemble", j)):
    print(f"{name}: {rows[k][0]} conns {int(a[k,0])} val mean {a[k,1]:.3f} val ens {a[k,2]:.3f} | test mean {a[k,3]:.3f} test ens {a[k,4]:.3f}")
print("test ensemble over these networks: max %.3f, median %.3f" % (a[:,4].max(), np.median(a[:,4])))

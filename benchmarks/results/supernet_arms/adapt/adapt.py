# Recorded copy: ran from scratch/arms4/ of the development checkout (outputs there, copied here).
"""Adapt a trained supernet to a search's elite (NAT / MSuNAS): per-gene choice distributions
estimated from the top-N of the search's evaluated set (non-dominated sorting on the search's
objectives), then E epochs of sandwich training with subnets drawn from those distributions
(the largest learns the labels and teaches; distillation). Scratch experiment.

usage: python adapt.py BASE_DIR SEARCH_DIR OUT_DIR EPOCHS LR TOPN [SEED]
"""
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nas.config import load_config
from nas.data import load_prepared
from nas.runners import read_populations
from nas.supernet import load_supernet
from nas.training import batches, recalibrate_bn, accuracy
from nas.spaces.elastic_build import extract_subnet

base, search, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
epochs, lr, topn = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
seed = int(sys.argv[7]) if len(sys.argv) > 7 else 0
cfg = load_config("params.yaml", ["data.out_dir=scratch/a2/data"])
torch.set_num_threads(2)
torch.manual_seed(seed)
data = load_prepared(cfg.data.out_dir)
bundle = load_supernet(base)
space, net = bundle.space, bundle.net
df = read_populations(search / "populations")
df = df[df.status == "ok"].drop_duplicates("candidate_id").reset_index(drop=True)
F = np.c_[-df.val_soft_accuracy.values, df.params.values, df.latency_ms.values]
fronts = NonDominatedSorting().do(F)
chosen = []
for fr in fronts:
    chosen += list(fr)
    if len(chosen) >= topn:
        break
chosen = chosen[:topn]
G = np.array([json.loads(g) if isinstance(g, str) else list(g) for g in df.genome.values[chosen]],
             dtype=int).reshape(len(chosen), space.n_var)  # TOPN 0: no elite, uniform choices (the control)
ub = space.upper_bounds
# per-gene choice frequencies (+1 smoothing); block genes counted only where the block is active
probs = []
for j in range(space.n_var):
    counts = np.ones(ub[j] + 1)
    if space.n_stages <= j < space._width_start:
        s, b = divmod((j - space.n_stages) // 2, space.max_depth)
        active = np.array([space.cfg.depths[g[s]] > b for g in G], dtype=bool)
        vals = G[active, j]
    else:
        vals = G[:, j]
    for v in vals:
        counts[v] += 1
    probs.append(counts / counts.sum())
rng = np.random.default_rng(seed)


def draw():
    return space.canonical(np.array([rng.choice(len(p), p=p) for p in probs]))


out.mkdir(parents=True, exist_ok=True)
for f in ("meta.json", "cost_table.json", "train_log.json"):
    shutil.copy(base / f, out / f)
sc = cfg.supernet
opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=sc.weight_decay)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * math.ceil(len(data.y_train) / sc.batch_size))
largest = space.largest()
net.train()
t0 = time.perf_counter()
for ep in range(epochs):
    for xb, yb in batches(data.x_train, data.y_train, sc.batch_size, rng):
        opt.zero_grad(set_to_none=True)
        teacher = None
        for g in [largest] + [draw() for _ in range(3)]:
            logits = net(xb, g)
            if teacher is None:
                loss = torch.nn.functional.cross_entropy(logits, yb)
                teacher = logits.detach().softmax(1)
            else:
                loss = -(teacher * logits.log_softmax(1)).sum(1).mean()
            loss.backward()
        opt.step()
        sched.step()
net.eval()
torch.save(net.state_dict(), out / "supernet.pt")
sub = extract_subnet(net, largest)
recalibrate_bn(sub, data.x_train, 8, 128, np.random.default_rng(0), "cpu")
print(f"{len(df)} evaluated, top {len(chosen)} in {len(fronts)} fronts; {epochs} epochs {time.perf_counter() - t0:.0f} s; "
      f"largest val {accuracy(sub, data.x_val, data.y_val):.4f}")
print("width-gene distributions:", [np.round(p, 2).tolist() for p in probs[space._width_start:]])
print("depth-gene distributions:", [np.round(p, 2).tolist() for p in probs[:space.n_stages]])

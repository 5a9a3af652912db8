# Recorded copy: ran from scratch/arms3/ of the development checkout (outputs there, copied here).
"""Few-shot NAS (Zhao et al., ICML 2021) on one decision: split a trained supernet into one
sub-supernet per choice of a width gene and fine-tune each on its own sub-space (sandwich rule,
in-place distillation from the sub-space's largest). Scratch experiment.

usage: python fewshot.py BASE_DIR OUT_DIR EPOCHS LR [STAGE] [SEED] [KEY=VALUE ...]
"""
import copy
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nas.config import load_config
from nas.data import load_prepared
from nas.genome import Genome
from nas.supernet import load_supernet
from nas.training import batches, recalibrate_bn, accuracy
from nas.spaces.elastic_build import extract_subnet

base, out, epochs, lr = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
stage = int(sys.argv[5]) if len(sys.argv) > 5 else -1
seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
cfg = load_config("params.yaml", ["data.out_dir=scratch/a2/data"] + sys.argv[7:])
torch.set_num_threads(2)
data = load_prepared(cfg.data.out_dir)
bundle = load_supernet(base)
space = bundle.space
ub = space.upper_bounds
stage = stage % space.n_stages
gene = space._width_start + stage
out.mkdir(parents=True, exist_ok=True)
for f in ("meta.json", "cost_table.json", "supernet.pt", "train_log.json"):
    shutil.copy(base / f, out / f)
sc = cfg.supernet
for wi in range(ub[gene] + 1):
    t0 = time.perf_counter()
    net = copy.deepcopy(bundle.net)
    net.train()
    rng = np.random.default_rng([seed, wi])
    torch.manual_seed(seed * 100 + wi)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=sc.weight_decay)
    steps = epochs * math.ceil(len(data.y_train) / sc.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def fix(v):
        v = np.array(v)
        v[gene] = wi
        return space.canonical(v)

    largest, smallest = fix(ub), fix(np.zeros_like(ub))
    for ep in range(epochs):
        for xb, yb in batches(data.x_train, data.y_train, sc.batch_size, rng):
            opt.zero_grad(set_to_none=True)
            gs = [largest, smallest] + [fix(rng.integers(0, ub + 1)) for _ in range(sc.random_subnets)]
            teacher = None
            for g in gs:
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
    torch.save(net.state_dict(), out / f"w{wi}.pt")
    accs = []
    for g in (largest, smallest):
        sub = extract_subnet(net, g)
        recalibrate_bn(sub, data.x_train, 8, 128, np.random.default_rng(0), "cpu")
        accs.append(accuracy(sub, data.x_val, data.y_val))
    print(f"width {wi}: {time.perf_counter() - t0:.0f} s, val largest {accs[0]:.4f} smallest {accs[1]:.4f}", flush=True)
(out / "fewshot.txt").write_text(f"stage {stage} gene {gene} epochs {epochs} lr {lr} seed {seed}\n")

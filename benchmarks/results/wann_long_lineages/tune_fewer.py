"""Session 23 diagnostic, the lead left open in session 22: the 1,000-generation networks overfit
while every connection's weight is tuned (train 100 %, validation falls). Tune fewer free weights
instead: one weight per node for all its incoming connections (per destination), one per node for
all its outgoing connections (per source), or both as factors (w = w0 * a[dst] * b[src]); each starts
at the network's best shared weight (factors at 1), Adam lr 0.05, 300 full-batch steps, the best
validation iterate taken every 10 steps, exactly the select stage's recipe otherwise (its own row
first, to show it reproduces). Validation would choose; test is printed only.
Run from the checkout: python benchmarks/results/wann_long_lineages/tune_fewer.py scratch/wl2/L1 ...
"""
import json, os, sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, os.getcwd())
from nas.config import load_config
from nas.genome import Genome, candidate_seed
from nas.wann.network import WannNet, forward_torch
from nas.wann.select import _split_seed, front_table, scores, task_and_space, val_scores
from nas.wann.tune import best_shared_weight

RECIPES = ["select stage (every connection)", "per destination node", "per source node", "destination x source"]


def tune(spec, x, y, xv, yv, w0, seed, recipe, steps=300, lr=0.05, every=10):
    net = WannNet(spec, w0, trainable=True).double()
    conns = [(int(s), int(d)) for s, d in spec["conns"]]
    nodes = sorted({n for c in conns for n in c})
    idx = {n: i for i, n in enumerate(nodes)}
    dst = torch.tensor([idx[d] for _, d in conns]); src = torch.tensor([idx[s] for s, _ in conns])
    base = net.weight.detach().clone()
    if recipe.startswith("select"):
        params = [net.weight]
        weight = lambda: net.weight
    else:
        a = torch.nn.Parameter(torch.ones(len(nodes), dtype=torch.float64))
        b = torch.nn.Parameter(torch.ones(len(nodes), dtype=torch.float64))
        params = {"per destination node": [a], "per source node": [b], "destination x source": [a, b]}[recipe]
        weight = lambda: base * a[dst] * b[src]
    fwd = lambda xx: forward_torch(net._tp, xx, weight().unsqueeze(0))[0]
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    xvt, yvt = torch.as_tensor(xv, dtype=torch.float64), torch.as_tensor(yv)
    def val():
        with torch.no_grad():
            o = fwd(xvt)
            return (float((o.argmax(1) == yvt).double().mean()), -float(torch.nn.functional.cross_entropy(o, yvt)))
    best_v, best_w = val(), base.numpy().copy()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.Adam(params, lr=lr)
        for step in range(1, steps + 1):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(fwd(xt), yt).backward(); opt.step()
            if step % every == 0 or step == steps:
                v = val()
                if v > best_v:
                    best_v, best_w = v, weight().detach().numpy().copy()
    return best_w, sum(p.numel() for p in params)


out = {}
for run in sys.argv[1:]:
    m = json.load(open(next(iter(sorted(Path(run).glob("reports/*/metrics.json"))))))
    sets = [f"search.seed={m['search_seed']}", "search.population=256", "search.generations=1000"]
    here = os.getcwd(); os.chdir(run)
    cfg = load_config(os.path.join(here, "examples/wann_digits.yaml"), sets)
    task, space = task_and_space(cfg)
    all_df, _ = front_table(cfg)
    os.chdir(here)
    r = all_df[all_df.candidate_id == m["reported_model"]].iloc[0]
    g = Genome.from_json(r["genome"], space.name); spec = space.spec(g)
    vs, ts = _split_seed(cfg.seed, g, "val"), _split_seed(cfg.seed, g, "test")
    wb, _ = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, cfg.evaluation.wann.rollouts))
    x, y = task.split("train"); xv, yv = task.split("val")
    row = {}
    for name in RECIPES:
        w, k = tune(spec, x, y, xv, yv, wb, candidate_seed(cfg.seed, g), name)
        row[name] = {s: float(scores(task, spec, w[None, :], s, vs if s == "val" else ts)[0]) for s in ("train", "val", "test")}
        row[name]["free_weights"] = int(k)
        print(f"{run} {m['reported_model']} {name:32s} free {k:4d} train {row[name]['train']:.4f} "
              f"val {row[name]['val']:.4f} test {row[name]['test']:.4f}", flush=True)
    out[run] = row
print("\nmean over the networks (validation chooses; test reported only)")
for name in RECIPES:
    print(f"{name:32s} " + " ".join(f"{s} {np.mean([out[k][name][s] for k in out]):.4f}" for s in ("train", "val", "test")))
json.dump(out, open("benchmarks/results/wann_long_lineages/tune_fewer.json", "w"), indent=1)

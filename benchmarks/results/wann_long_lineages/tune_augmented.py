"""Session 22 diagnostic, run after tune_regularised.py: tuning on training images shifted by up to one
pixel (a fresh seeded shift of every image at every step, zero fill), otherwise the select stage's recipe.
The 1,000-generation networks fit their training images fully and lose
validation accuracy while tuning. Tune each lineage's reported network with the select stage's
recipe (Adam lr 0.05, 300 full-batch steps, best validation iterate every 10 steps) and with
penalties pulling each weight toward the network's best shared weight (lambda * mean((w - w0)^2)),
validation scored every step. Validation would choose; test is printed only.
Run from the checkout: python benchmarks/results/wann_long_lineages/tune_regularised.py scratch/wl2/L1 ...
"""
import json, os, sys
import numpy as np, torch
sys.path.insert(0, os.getcwd())
from nas.config import load_config
from nas.genome import Genome, candidate_seed
from nas.wann.network import WannNet
from nas.wann.select import _split_seed, front_table, scores, task_and_space, val_scores
from nas.wann.tune import best_shared_weight

RECIPES = {"select stage": dict(lam=0.0, every=10, shift=0), "shift 1 px": dict(lam=0.0, every=10, shift=1),
           "shift 1 px, 600 steps": dict(lam=0.0, every=10, shift=1, steps=600)}


def shifted(x, rng, k):
    """Each 8x8 image moved by (dy, dx) in [-k, k]^2, zero fill."""
    n = len(x); img = x.reshape(n, 8, 8); out = np.zeros_like(img)
    d = rng.integers(-k, k + 1, size=(n, 2))
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            i = np.where((d[:, 0] == dy) & (d[:, 1] == dx))[0]
            src = img[i][:, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
            out[i, max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)] = src
    return out.reshape(n, 64)


def tune(spec, x, y, xv, yv, w0, seed, lam, every, shift, steps=300, lr=0.05):
    net = WannNet(spec, w0, trainable=True).double()
    start = net.weight.detach().clone()
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    rng = np.random.default_rng(seed)
    xvt, yvt = torch.as_tensor(xv, dtype=torch.float64), torch.as_tensor(yv)
    def val():
        with torch.no_grad():
            o = net(xvt)
            return (float((o.argmax(1) == yvt).double().mean()), -float(torch.nn.functional.cross_entropy(o, yvt)))
    best_v, best_w = val(), start.numpy().copy()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for step in range(1, steps + 1):
            opt.zero_grad()
            xb = torch.as_tensor(shifted(x, rng, shift), dtype=torch.float64) if shift else xt
            loss = torch.nn.functional.cross_entropy(net(xb), yt) + lam * ((net.weight - start) ** 2).mean()
            loss.backward(); opt.step()
            if step % every == 0 or step == steps:
                v = val()
                if v > best_v:
                    best_v, best_w = v, net.weight.detach().numpy().copy()
    return best_w


out = {}
for run in sys.argv[1:]:
    m = json.load(open(next(iter(sorted((p for p in __import__("pathlib").Path(run).glob("reports/*/metrics.json")))))))
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
    for name, kw in RECIPES.items():
        w = tune(spec, x, y, xv, yv, wb, candidate_seed(cfg.seed, g), **kw)
        row[name] = {s: float(scores(task, spec, w[None, :], s, vs if s == "val" else ts)[0]) for s in ("train", "val", "test")}
        print(f"{run} {m['reported_model']} {name:24s} train {row[name]['train']:.4f} val {row[name]['val']:.4f} test {row[name]['test']:.4f}", flush=True)
    out[run] = row
print("\nmean over the networks (validation chooses; test reported only)")
for name in RECIPES:
    print(f"{name:24s} " + " ".join(f"{s} {np.mean([out[k][name][s] for k in out]):.4f}" for s in ("train", "val", "test")))
json.dump(out, open("benchmarks/results/wann_long_lineages/tune_augmented.json", "w"), indent=1)

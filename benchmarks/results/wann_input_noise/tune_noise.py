"""Session 25: regularisers not yet tried while tuning the long lineages' networks: Gaussian input
noise, input dropout, label smoothing (validation chooses; test printed only)."""
import json, os, sys, pathlib
import numpy as np, torch
sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "benchmarks")]
from nas.genome import candidate_seed
from nas.wann.network import WannNet
from nas.wann.select import scores
from wann_lineages import reported_network

RECIPES = {"select stage": dict(),
           "noise 0.05": dict(noise=0.05), "noise 0.1": dict(noise=0.1), "noise 0.2": dict(noise=0.2),
           "noise 0.4": dict(noise=0.4),
           "in-dropout 0.1": dict(drop=0.1), "in-dropout 0.2": dict(drop=0.2),
           "smooth 0.1": dict(smooth=0.1)}


def tune(spec, x, y, xv, yv, w0, seed, noise=0.0, drop=0.0, smooth=0.0, steps=300, lr=0.05, every=10):
    net = WannNet(spec, w0, trainable=True).double()
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    xvt, yvt = torch.as_tensor(xv, dtype=torch.float64), torch.as_tensor(yv)
    def val():
        with torch.no_grad():
            o = net(xvt)
            return (float((o.argmax(1) == yvt).double().mean()), -float(torch.nn.functional.cross_entropy(o, yvt)))
    best_v, best_w = val(), net.weight.detach().numpy().copy()
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for step in range(1, steps + 1):
            opt.zero_grad()
            xin = xt
            if noise:
                xin = xin + noise * torch.randn(xt.shape, generator=g, dtype=torch.float64)
            if drop:
                xin = xin * (torch.rand(xt.shape, generator=g, dtype=torch.float64) > drop) / (1 - drop)
            loss = torch.nn.functional.cross_entropy(net(xin), yt, label_smoothing=smooth)
            loss.backward(); opt.step()
            if step % every == 0 or step == steps:
                v = val()
                if v > best_v:
                    best_v, best_w = v, net.weight.detach().numpy().copy()
    return best_w


if os.environ.get("SWEEP") == "2":
    RECIPES = {"noise 0.4": dict(noise=0.4), "noise 0.6": dict(noise=0.6), "noise 0.8": dict(noise=0.8),
               "noise 1.0": dict(noise=1.0), "noise 0.4 x600": dict(noise=0.4, steps=600),
               "noise 0.6 x600": dict(noise=0.6, steps=600), "noise 0.4 + drop 0.1": dict(noise=0.4, drop=0.1)}
OUT = os.environ.get("OUT", "benchmarks/results/wann_input_noise/sweep1.json")
out = {}
for run in sys.argv[1:]:
    m = json.load(open(sorted(pathlib.Path(run).glob("reports/*/metrics.json"))[0]))
    sets = [f"search.seed={m['search_seed']}", "search.population=256", "search.generations=1000"]
    n = reported_network(pathlib.Path(run), pathlib.Path("examples/wann_digits.yaml"), sets)
    cfg, task, spec, g, vs, ts, wb = (n[k] for k in ("cfg", "task", "spec", "genome", "val_seed", "test_seed", "w_best"))
    x, y = task.split("train"); xv, yv = task.split("val")
    if run == sys.argv[1]:
        print("x range", x.min(), x.max(), "mean", x.mean(), "std", x.std(), flush=True)
    row = {}
    for name, kw in RECIPES.items():
        w = tune(spec, x, y, xv, yv, wb, candidate_seed(cfg.seed, g), **kw)
        row[name] = {s: float(scores(task, spec, w[None, :], s, vs if s == "val" else ts)[0]) for s in ("train", "val", "test")}
        print(f"{run} {name:16s} train {row[name]['train']:.4f} val {row[name]['val']:.4f} test {row[name]['test']:.4f}", flush=True)
    out[run] = row
print("\nmean over the networks (validation chooses; test reported only)")
for name in RECIPES:
    print(f"{name:16s} " + " ".join(f"{s} {np.mean([out[k][name][s] for k in out]):.4f}" for s in ("train", "val", "test")))
json.dump(out, open(OUT, "w"), indent=1)

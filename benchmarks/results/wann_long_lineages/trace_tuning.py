# Tuning trajectory of one long-search network (session 22): run in its workdir; argv[1] = candidate id; the
# search.seed in load_config set to the run's (5 for L5; the L2 trace used 2 and only lr 0.05).
import sys, numpy as np, torch
sys.path.insert(0, '/work/main')
from nas.config import load_config
from nas.genome import Genome, candidate_seed
from nas.wann.select import _split_seed, front_table, task_and_space, val_scores
from nas.wann.network import WannNet
from nas.wann.tune import best_shared_weight
cid = sys.argv[1]
cfg = load_config('/work/main/examples/wann_digits.yaml', ['search.seed=5','search.population=256','search.generations=1000'])
task, space = task_and_space(cfg)
all_df, _ = front_table(cfg)
r = all_df[all_df.candidate_id == cid].iloc[0]
g = Genome.from_json(r['genome'], space.name); spec = space.spec(g)
vs = _split_seed(cfg.seed, g, 'val')
ev = cfg.evaluation.wann
wb, vb = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, ev.rollouts))
print('best shared', wb, vb)
x, y = task.split('train'); xv, yv = task.split('val')
for lr in (0.05, 0.01):
    net = WannNet(spec, wb, trainable=True).double()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    xvt, yvt = torch.as_tensor(xv, dtype=torch.float64), torch.as_tensor(yv)
    for step in range(0, 301):
        if step % 25 == 0:
            with torch.no_grad():
                o = net(xt); ov = net(xvt)
                print(f'lr {lr} step {step:3d} loss {float(torch.nn.functional.cross_entropy(o, yt)):.4f} train {float((o.argmax(1)==yt).double().mean()):.4f} val {float((ov.argmax(1)==yvt).double().mean()):.4f}', flush=True)
        if step == 300: break
        opt.zero_grad(); loss = torch.nn.functional.cross_entropy(net(xt), yt); loss.backward(); opt.step()

"""Kendall tau of several scores of the inherited logits (soft accuracy at temperatures 0.5-5, the
log-likelihood, the true class's rank, top-1/top-5, reciprocal rank, logit margins, soft accuracy at a
per-subnet temperature fitted on training images) against each stand-alone seed and their mean."""
import sys, numpy as np
from scipy.stats import kendalltau
from scipy.special import log_softmax, softmax
from scipy.optimize import minimize_scalar

def scores(d):
    lv, y = d['val_logits'], d['y_val']; lt, yt = d['train_logits'], d['y_train']
    n = np.arange(len(y)); out = {}
    for T in [0.5, 0.75, 1, 1.5, 2, 3, 5]:
        p = softmax(lv / T, -1)
        out[f'soft@T{T}'] = p[:, n, y].mean(1)
    out['loglik'] = log_softmax(lv, -1)[:, n, y].mean(1)
    srt = np.sort(lv, -1)
    true = lv[:, n, y]
    rank = (lv > true[..., None]).sum(-1)  # number of classes above the true one
    out['mean_rank_neg'] = -rank.mean(1)
    out['top5'] = (rank < 5).mean(1)
    out['top1'] = (rank < 1).mean(1)
    out['mrr'] = (1.0 / (1 + rank)).mean(1)
    other = np.where(np.arange(lv.shape[-1])[None, None, :] == y[None, :, None], -np.inf, lv).max(-1)
    out['margin_mean'] = (true - other).mean(1)
    out['margin_clip'] = np.clip(true - other, -2, 2).mean(1)
    # per-subnet temperature fitted on training images (NLL), then soft accuracy on val
    cal = []
    for i in range(len(lv)):
        f = lambda logT: -log_softmax(lt[i] / np.exp(logT), -1)[np.arange(len(yt)), yt].mean()
        T = np.exp(minimize_scalar(f, bounds=(-3, 3), method='bounded').x)
        cal.append(softmax(lv[i] / T, -1)[n, y].mean())
    out['soft@calT'] = np.array(cal)
    out['params'] = d['params'].astype(float)
    return out

rows = {}
for sup in sys.argv[1:]:
    for s in ['rec', 'ho', 'f23']:
        d = dict(np.load(f'/work/main/scratch/score/{sup}.{s}.npz'))
        sc = scores(d)
        for k, v in sc.items():
            taus = [kendalltau(v, d['sa'][:, r]).statistic for r in range(d['sa'].shape[1])]
            taum = kendalltau(v, d['sa'].mean(1)).statistic
            rows.setdefault(k, {})[(sup, s)] = (taus, taum)
keys = list(next(iter(rows.values())).keys())
print('score'.ljust(14), ' '.join(f'{a}.{b}'.rjust(16) for a, b in keys), '  mean-single  mean-2seed')
for k, r in rows.items():
    cells = [f"{r[c][0][0]:.3f}/{r[c][0][1]:.3f}" for c in keys]
    ms = np.mean([t for c in keys for t in r[c][0]]); m2 = np.mean([r[c][1] for c in keys])
    print(k.ljust(14), ' '.join(x.rjust(16) for x in cells), f'  {ms:.3f}       {m2:.3f}')

import json, sys
import numpy as np
from scipy.stats import kendalltau
for n in sys.argv[1:]:
    out = []; avg4 = []
    for s in ("rec", "ho"):
        try:
            d = json.load(open(f"scratch/arms2/{n}.{s}.json"))
        except FileNotFoundError:
            continue
        sub = d["subnets"]
        inh = [x["inherited_soft_val"] for x in sub]
        r0 = [x["runs"][0]["val"] for x in sub]; r1 = [x["runs"][1]["val"] for x in sub]
        m = [x["standalone_val"] for x in sub]
        t = lambda a, b: kendalltau(a, b).statistic
        avg4 += [t(inh, r0), t(inh, r1)]
        out.append(f"{s}: soft s0 {t(inh,r0):.3f} s1 {t(inh,r1):.3f} mean {t(inh,m):.3f} | argmax mean {d['kendall_tau']:.3f}")
    print(f"{n:12s}", " || ".join(out), f"|| avg4 {np.mean(avg4):.3f}")
# residual of the mean stand-alone val on the inherited soft score, correlated with last-stage width and depth
import re
for n in sys.argv[1:]:
    xs, ys, w2, d2 = [], [], [], []
    for s in ("rec", "ho"):
        try:
            d = json.load(open(f"scratch/arms2/{n}.{s}.json"))
        except FileNotFoundError:
            continue
        for x in d["subnets"]:
            st = x["architecture"].split("|")[-1].strip()
            c, bl = st.split(":")
            xs.append(x["inherited_soft_val"]); ys.append(x["standalone_val"]); w2.append(int(c[1:])); d2.append(len(bl.split("-")))
    A = np.c_[np.ones(len(xs)), xs]; coef, *_ = np.linalg.lstsq(A, ys, rcond=None); res = np.array(ys) - A @ coef
    print(f"{n:12s} resid sd {res.std():.4f}  corr(resid, w2) {np.corrcoef(res, w2)[0,1]:.2f}  corr(resid, d2) {np.corrcoef(res, d2)[0,1]:.2f}")

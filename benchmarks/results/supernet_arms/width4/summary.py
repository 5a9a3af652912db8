"""Kendall taus of the 0.25-1.0 width space's supernets (seeds 0-2) against the stand-alone references
of three 24-subnet sets (subnet seeds 99, 7, 23; two stand-alone seeds each). Run from this folder:
  ../../../../.venv/bin/python summary.py > summary.txt"""
import json
import statistics as st
from pathlib import Path

from scipy.stats import kendalltau

HERE = Path(__file__).parent


def tau(a, b):
    return float(kendalltau(a, b)[0])


rows = {}
for sup, pre in (("supernet seed 0", ""), ("supernet seed 1", "s1_"), ("supernet seed 2", "s2_")):
    r = {k: [] for k in ("soft", "argmax", "params", "soft_mean", "argmax_mean", "params_mean", "soft_no_smallest", "params_no_smallest")}
    for ss in (99, 7, 23):
        s = json.loads((HERE / f"{pre}r{ss}.json").read_text())["subnets"]
        soft = [x["inherited_soft_val"] for x in s]
        arg = [x["inherited_val"] for x in s]
        par = [x["params"] for x in s]
        mean = [x["standalone_val"] for x in s]
        for k in range(2):
            ref = [x["runs"][k]["val"] for x in s]
            r["soft"].append(tau(soft, ref)); r["argmax"].append(tau(arg, ref)); r["params"].append(tau(par, ref))
            r["soft_no_smallest"].append(tau(soft[1:], ref[1:])); r["params_no_smallest"].append(tau(par[1:], ref[1:]))
        r["soft_mean"].append(tau(soft, mean)); r["argmax_mean"].append(tau(arg, mean)); r["params_mean"].append(tau(par, mean))
        print(f"{sup}, subnet set {ss}: soft {r['soft'][-2]:.3f} / {r['soft'][-1]:.3f} / mean {r['soft_mean'][-1]:.3f}; "
              f"argmax {r['argmax'][-2]:.3f} / {r['argmax'][-1]:.3f} / {r['argmax_mean'][-1]:.3f}; "
              f"params {r['params'][-2]:.3f} / {r['params'][-1]:.3f} / {r['params_mean'][-1]:.3f}")
    rows[sup] = {k: st.mean(v) for k, v in r.items()}
print()
print("means: of 6 single-seed taus (3 sets x 2 stand-alone seeds); *_mean: of 3 taus against the 2-seed means")
for sup, r in rows.items():
    print(sup, "  ".join(f"{k} {v:.3f}" for k, v in r.items()))

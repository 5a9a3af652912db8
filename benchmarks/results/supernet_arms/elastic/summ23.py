import json, sys
import numpy as np
from scipy.stats import kendalltau
t = lambda a, b: kendalltau(a, b).statistic
for n in sys.argv[1:]:
    d = json.load(open(f"scratch/arms2/{n}.f23.json"))
    sub = d["subnets"]
    inh = [x["inherited_soft_val"] for x in sub]; arg = [x["inherited_val"] for x in sub]
    seeds = [[x["runs"][r]["val"] for x in sub] for r in range(len(sub[0]["runs"]))]
    m = [x["standalone_val"] for x in sub]
    print(f"{n:10s} soft: seed0 {t(inh, seeds[0]):.3f} seed1 {t(inh, seeds[1]):.3f} mean {t(inh, m):.3f} | argmax: seed0 {t(arg, seeds[0]):.3f} seed1 {t(arg, seeds[1]):.3f} mean {t(arg, m):.3f} | params {d['kendall_tau_params_vs_standalone']:.3f} seeds-agree {t(seeds[0], seeds[1]):.3f} spread {d['standalone_spread']:.3f}")

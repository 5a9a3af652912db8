import json, sys
import numpy as np
from scipy.stats import kendalltau
t = lambda a, b: kendalltau(a, b).statistic
for n in sys.argv[1:]:
    out = []
    for s in ("rec", "ho"):
        try:
            d = json.load(open(f"scratch/arms2/{n}.{s}.json"))
        except FileNotFoundError:
            continue
        sub = d["subnets"]
        inh = [x["inherited_soft_val"] for x in sub]; arg = [x["inherited_val"] for x in sub]
        par = [x["params"] for x in sub]
        seeds = [[x["runs"][r]["val"] for x in sub] for r in range(len(sub[0]["runs"]))]
        m = [x["standalone_val"] for x in sub]
        out.append(f"{s}: soft per seed " + " ".join(f"{t(inh, r):.3f}" for r in seeds) + f" mean {t(inh, m):.3f}"
                   f" argmax {t(arg, m):.3f} params {t(par, m):.3f} spread {d['standalone_spread']:.3f}"
                   + (f" seeds {t(seeds[0], seeds[1]):.3f}" if len(seeds) > 1 else ""))
    print(f"{n:12s}", " || ".join(out))

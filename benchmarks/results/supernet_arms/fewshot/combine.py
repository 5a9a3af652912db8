# Recorded copy: ran from the development checkout. Averages the inherited soft accuracy of several
# supernets (other seeds or recipes) on the same subnets and ranks the average against the references.
import json, os
import numpy as np
from scipy.stats import kendalltau as kt


def load(n, s):
    p = f"scratch/arms3/{n}.{s}.json"
    if not os.path.exists(p):
        p = f"scratch/arms2/{n}.{s}.json"
    return json.load(open(p))["subnets"]


def combo(names):
    singles, means = [], []
    for s in ("rec", "ho", "f23"):
        subs = [load(n, s) for n in names]
        ids = [x["candidate_id"] for x in subs[0]]
        for sb in subs:
            assert [x["candidate_id"] for x in sb] == ids
        soft = np.mean([[x["inherited_soft_val"] for x in sb] for sb in subs], 0)
        r = subs[0]
        for k in range(2):
            singles.append(kt(soft, [x["runs"][k]["val"] for x in r])[0])
        means.append(kt(soft, [x["standalone_val"] for x in r])[0])
    return np.mean(singles), np.mean(means)


for names in (["base"], ["base", "base_s1"], ["base", "base_s2"], ["base_s1", "base_s2"], ["base", "base_s1", "base_s2"],
              ["ep12"], ["ep12", "ep16"], ["ep12", "base"]):
    a, b = combo(names)
    print(names, "avg single %.3f avg mean-of-2 %.3f" % (a, b))

# Recorded copy: ran from scratch/arms4/ of the development checkout (outputs there, copied here).
import json, os, sys
from scipy.stats import kendalltau
t = lambda a, b: kendalltau(a, b).statistic
for n in sys.argv[1:]:
    out, singles = [], []
    for s in ("el", "rec", "ho", "f23"):
        p = f"scratch/arms4/{n}.{s}.json"
        if not os.path.exists(p):
            for d in ("arms3", "arms2"):
                if os.path.exists(f"scratch/{d}/{n}.{s}.json"):
                    p = f"scratch/{d}/{n}.{s}.json"
        if not os.path.exists(p):
            continue
        sub = json.load(open(p))["subnets"]
        inh = [x["inherited_soft_val"] for x in sub]
        seeds = [[x["runs"][r]["val"] for x in sub] for r in range(2)]
        m = [x["standalone_val"] for x in sub]
        ts = [t(inh, r) for r in seeds]
        if s != "el":
            singles += ts
        out.append(f"{s}: " + " ".join(f"{x:.3f}" for x in ts) + f" mean {t(inh, m):.3f}")
    print(f"{n:8s}", " || ".join(out), f"|| avg single (72) {sum(singles)/max(1,len(singles)):.3f}")

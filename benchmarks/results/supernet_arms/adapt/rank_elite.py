# Recorded copy: ran from scratch/arms4/ of the development checkout (outputs there, copied here).
"""supernet_ranking.py on a fixed list of subnets (scratch/arms4/elite24.json) instead of a size-stratified sample."""
import json, os, runpy, sys
import numpy as np
import nas.strategies.base as sb
sys.path.insert(0, "scratch/arms4")
values = json.load(open(os.environ.get("SUBNETS", "scratch/arms4/elite24.json")))


def fixed(space, rng, n, cost):
    gs = [space.canonical(np.array(v)) for v in values]
    return sorted(gs, key=cost)


sb.size_stratified = fixed
sys.argv = ["benchmarks/supernet_ranking.py"] + sys.argv[1:]
runpy.run_path("benchmarks/supernet_ranking.py", run_name="__main__")

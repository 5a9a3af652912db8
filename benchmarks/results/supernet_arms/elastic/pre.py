"""Pretrain a supernet arm with a patch of the training recipe (scratch experiments only)."""
import sys
import numpy as np
import nas.supernet as sn
from nas.config import load_config
from nas.stages import pretrain_supernet

patch, sets = sys.argv[1], sys.argv[2:]
cfg = load_config("params.yaml", sets)

if patch == "nosmall":  # sandwich without the smallest: largest + (random_subnets + 1) uniform ones
    def step_subnets(space, elastic, rng, random_subnets):
        return [space.largest()] + [space.sample_elastic(rng, elastic) for _ in range(random_subnets + 1)]
    sn.step_subnets = step_subnets
else:
    sys.path.insert(0, "scratch/arms2")
    import patches
    patches.apply(patch)
print(pretrain_supernet(cfg))

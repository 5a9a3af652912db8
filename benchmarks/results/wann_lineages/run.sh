#!/usr/bin/env bash
# Recorded copy of the scripts that ran (2026-12-04, session 21) from the development checkout
# (scratch/wl/run.sh, run2.sh, run3.sh); the same settings as the session-19 run (seed 0, 400
# generations of 256; its metrics: seed0_metrics.json).
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
# 1. Lineages on their own data splits (other `seed` values): seeds 1-4, planned as one loop; seed 4 was
#    stopped before it started and run right after the other three (run2.sh, whose seeds 5 and 6 were
#    stopped before they started, once search.seed existed).
for s in 1 2 3 4; do
  python benchmarks/wann.py --task digits --set seed=$s --set search.population=256 --set search.generations=400 \
     --workdir scratch/wl/W$s --json scratch/wl/seed$s.json > scratch/wl/seed$s.txt 2>&1
done
# 2. Lineages on one data split (seed 0's): search.seed 1-3 (run3.sh)
for s in 1 2 3; do
  python benchmarks/wann.py --task digits --set search.seed=$s --set search.population=256 --set search.generations=400 \
     --workdir scratch/wl/S$s --json scratch/wl/sseed$s.json > scratch/wl/sseed$s.txt 2>&1
done
# 3. The choice on validation (scratch/w400: the session-19 run, seed 0)
python benchmarks/wann_lineages.py scratch/w400 scratch/wl/W1 scratch/wl/W2 scratch/wl/W3 scratch/wl/W4 \
    --json benchmarks/results/wann_lineages/own_splits.json     # own_splits.txt
python benchmarks/wann_lineages.py scratch/w400 scratch/wl/S1 scratch/wl/S2 scratch/wl/S3 \
    --json benchmarks/results/wann_lineages/one_split.json      # one_split.txt

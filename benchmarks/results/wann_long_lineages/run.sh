#!/usr/bin/env bash
# Recorded copy of the scripts that ran (2026-12-04, session 22) from the development checkout
# (scratch/wl2/run.sh and run2.sh; run2.sh queued search.seed 4 after the first three).
# Longer independent WANN digits searches on ONE data split (seed 0): search.seed 1..4,
# 1,000 generations of 256 each, all four within the task's 2-hour budget (82.7 minutes in all).
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
for s in 1 2 3 4; do
  t0=$(date +%s)
  python benchmarks/wann.py --task digits --set search.seed=$s --set search.population=256 --set search.generations=1000 \
     --workdir scratch/wl2/L$s --json scratch/wl2/lseed$s.json > scratch/wl2/lseed$s.txt 2>&1
  echo "search.seed $s rc $? $(( $(date +%s) - t0 )) s" >> scratch/wl2/times.txt
done
# The choice on validation:
python benchmarks/wann_lineages.py scratch/wl2/L1 scratch/wl2/L2 scratch/wl2/L3 scratch/wl2/L4 \
    --json benchmarks/results/wann_long_lineages/one_split.json     # one_split.txt
# 2. A fifth lineage, started after the four were known (scratch/wl2/run3.sh), and the choice over five:
python benchmarks/wann.py --task digits --set search.seed=5 --set search.population=256 --set search.generations=1000 \
   --workdir scratch/wl2/L5 --json scratch/wl2/lseed5.json > scratch/wl2/lseed5.txt 2>&1
python benchmarks/wann_lineages.py scratch/wl2/L1 scratch/wl2/L2 scratch/wl2/L3 scratch/wl2/L4 scratch/wl2/L5 \
    --json benchmarks/results/wann_long_lineages/five.json    # five.txt
# 3. Diagnostics: the tuning trajectory (in scratch/wl2/L5 and L2) and the regularised recipes on the five networks
(cd scratch/wl2/L5 && python ../../../benchmarks/results/wann_long_lineages/trace_tuning.py 07e2910ae5d4)   # trace_seed5.txt
python benchmarks/results/wann_long_lineages/tune_regularised.py scratch/wl2/L1 scratch/wl2/L2 scratch/wl2/L3 \
    scratch/wl2/L4 scratch/wl2/L5                                                               # tune_regularised.txt
python benchmarks/results/wann_long_lineages/tune_augmented.py scratch/wl2/L1 scratch/wl2/L2 scratch/wl2/L3 \
    scratch/wl2/L4 scratch/wl2/L5                                                               # tune_augmented.txt

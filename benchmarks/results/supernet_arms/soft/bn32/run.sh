#!/usr/bin/env bash
# The soft accuracy with BatchNorm recalibrated on 32 batches instead of 8, for the five default-recipe
# supernets (seed 0: artifacts/supernet; seeds 1-4: scratch/arms/seedN from arms.sh) on the recorded
# subnets (4-seed reference) and the held-out ones (--subnet-seed 7, 2-seed reference). About 45 s per
# line on 2 cores; writes scratch/softbn/ (recorded copies beside this file). Run from the repository root.
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p scratch/softbn
for n in 0 1 2 3 4; do
  sn=(); [[ $n != 0 ]] && sn=(--set supernet.out_dir=scratch/arms/seed$n)
  python benchmarks/supernet_ranking.py --repeats 4 --reference benchmarks/results/supernet_ranking_repeats4.json \
     "${sn[@]}" --set evaluation.bn_batches=32 --json scratch/softbn/rec_seed$n.json > scratch/softbn/rec_seed$n.log 2>&1
  python benchmarks/supernet_ranking.py --subnet-seed 7 --repeats 2 --reference benchmarks/results/supernet_arms/soft/heldout7_seed0.json \
     "${sn[@]}" --set evaluation.bn_batches=32 --json scratch/softbn/ho_seed$n.json > scratch/softbn/ho_seed$n.log 2>&1
done

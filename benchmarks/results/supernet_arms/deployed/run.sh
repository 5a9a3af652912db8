#!/usr/bin/env bash
# The delivered-subnet diagnostic (supernet_ranking.py --deployed 2) for the default supernet (seed 0, artifacts/supernet
# of `make run`) and supernet seeds 1 and 2 (scratch/arms/seedN from arms.sh), on the recorded subnets (4-seed
# stand-alone reference) and the held-out ones (--subnet-seed 7, 2-seed reference). About 6 minutes per line on
# 2 cores; writes scratch/deployed/ (recorded copies beside this file). Run from the repository root.
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p scratch/deployed
for n in ${*:-0 1 2}; do
  sn=(); [[ $n != 0 ]] && sn=(--set supernet.out_dir=scratch/arms/seed$n)
  python benchmarks/supernet_ranking.py --repeats 4 --reference benchmarks/results/supernet_ranking_repeats4.json \
     "${sn[@]}" --deployed 2 --json scratch/deployed/rec_seed$n.json > scratch/deployed/rec_seed$n.log 2>&1
  python benchmarks/supernet_ranking.py --subnet-seed 7 --repeats 2 --reference benchmarks/results/supernet_arms/soft/heldout7_seed0.json \
     "${sn[@]}" --deployed 2 --json scratch/deployed/ho_seed$n.json > scratch/deployed/ho_seed$n.log 2>&1
done

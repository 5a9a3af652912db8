#!/usr/bin/env bash
# Session 28: the replication of PROTOCOL.md's fresh check on another never-used split (seed 9).
# The same command as run.sh but for the seed. Run from the checkout.
set -e
python=.venv/bin/python
date
$python benchmarks/wann.py --task digits --set seed=9 --set search.population=256 \
  --set search.generations=2000 --set "search.objectives=[ensemble_score,connections]" \
  --workdir scratch/s28/F9 --json benchmarks/results/wann_ensemble_rank/seed9.json \
  > benchmarks/results/wann_ensemble_rank/seed9.txt
cp scratch/s28/F9/reports/wann_digits/metrics.json benchmarks/results/wann_ensemble_rank/seed9_metrics.json
date

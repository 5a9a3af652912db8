#!/usr/bin/env bash
# Session 27: the fresh check of PROTOCOL.md (seed 8, ranking on ensemble_score). Run from the checkout.
set -e
python=.venv/bin/python
date
$python benchmarks/wann.py --task digits --set seed=8 --set search.population=256 \
  --set search.generations=2000 --set "search.objectives=[ensemble_score,connections]" \
  --workdir scratch/s27/F8 --json benchmarks/results/wann_ensemble_rank/seed8.json \
  > benchmarks/results/wann_ensemble_rank/seed8.txt
cp scratch/s27/F8/reports/wann_digits/metrics.json benchmarks/results/wann_ensemble_rank/seed8_metrics.json
date

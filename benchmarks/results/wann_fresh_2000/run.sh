#!/usr/bin/env bash
# Session 26 (2026-12-04): the digits record's command on a fresh data split (seed 7), fixed in advance
# in PROTOCOL.md (committed before this ran). Run from the checkout; about 74 minutes on 2 cores.
set -e
python benchmarks/wann.py --task digits --set seed=7 --set search.population=256 \
  --set search.generations=2000 --workdir scratch/s26/F7 \
  --json benchmarks/results/wann_fresh_2000/seed7.json > benchmarks/results/wann_fresh_2000/seed7.txt
cp scratch/s26/F7/reports/wann_digits/metrics.json benchmarks/results/wann_fresh_2000/seed7_metrics.json
python benchmarks/results/wann_fresh_2000/ensemble_front.py scratch/s26/F7 seed=7 search.population=256 search.generations=2000 > benchmarks/results/wann_fresh_2000/ensemble_front.txt   # after the outcome, 37 s
python benchmarks/results/wann_fresh_2000/ensemble_generations.py scratch/s26/F7 seed=7 search.population=256 search.generations=2000 > benchmarks/results/wann_fresh_2000/ensemble_generations.txt   # after the outcome, 10 s

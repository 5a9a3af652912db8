#!/usr/bin/env bash
# Session 25 (2026-12-04): Gaussian noise on the training inputs while tuning a WANN classifier's
# individual weights. Run from the checkout. L1-L5 are session 22's 1,000-generation lineages
# (benchmarks/results/wann_long_lineages/run.sh: search.seed 1-5 on seed 0's split); W1-W4, S1-S3 are
# session 21's 400-generation lineages (benchmarks/results/wann_lineages/run.sh) and w400 session 19's run.
set -e
L="scratch/wl2/L1 scratch/wl2/L2 scratch/wl2/L3 scratch/wl2/L4 scratch/wl2/L5"
# 1. choose on validation (test printed only): the select stage's recipe against noise, input dropout,
#    label smoothing (about 5 minutes), then noise levels and 600 steps (about 8 minutes)
python benchmarks/results/wann_input_noise/tune_noise.py $L > benchmarks/results/wann_input_noise/sweep1.txt
SWEEP=2 OUT=benchmarks/results/wann_input_noise/sweep2.json \
  python benchmarks/results/wann_input_noise/tune_noise.py $L > benchmarks/results/wann_input_noise/sweep2.txt
# 2. the chosen recipe (sigma 0.4, 600 steps) on eight networks that chose nothing, through the select
#    stage's own tuner (about 2 minutes)
P=search.population=256,search.generations=400
python benchmarks/results/wann_input_noise/check_noise.py 0.4 600 \
  scratch/wl/W1:seed=1,$P scratch/wl/W2:seed=2,$P scratch/wl/W3:seed=3,$P scratch/wl/W4:seed=4,$P \
  scratch/wl/S1:search.seed=1,$P scratch/wl/S2:search.seed=2,$P scratch/wl/S3:search.seed=3,$P \
  scratch/w400:$P > benchmarks/results/wann_input_noise/check.txt
# 3. the record, the same command as session 11's with the example's new tuning (about an hour)
python benchmarks/wann.py --task digits --set search.population=256 --set search.generations=2000 \
  --workdir WORK --json benchmarks/results/wann_digits.json
# 4. after the record (0.939) was known: two fresh data splits at 1,000 generations (about 19 minutes each)
for s in 5 6; do
  python benchmarks/wann.py --task digits --set seed=$s --set search.population=256 --set search.generations=1000 \
    --workdir F$s --json benchmarks/results/wann_input_noise/fresh_seed$s.json \
    > benchmarks/results/wann_input_noise/fresh_seed$s.txt
  cp F$s/reports/wann_digits/metrics.json benchmarks/results/wann_input_noise/fresh_seed${s}_metrics.json
done
python benchmarks/wann_lineages.py F5 F6 --json benchmarks/results/wann_input_noise/fresh_lineages.json \
  > benchmarks/results/wann_input_noise/fresh_lineages.txt

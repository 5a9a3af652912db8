#!/usr/bin/env bash
# Recorded copy of scratch/wl/run.sh (2026-12-04, session 21), run from the development checkout.
# Independent WANN digits lineages: seeds 1..3, 400 generations, population 256 (the settings of the
# session-19 run, seed 0, in wann_tune_variants.txt). A seed 4 was planned and stopped before it started.
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
for s in 1 2 3; do
  t0=$(date +%s)
  python benchmarks/wann.py --task digits --set seed=$s --set search.population=256 --set search.generations=400 \
     --workdir scratch/wl/W$s --json scratch/wl/seed$s.json > scratch/wl/seed$s.txt 2>&1
  echo "seed $s rc $? $(( $(date +%s) - t0 )) s" >> scratch/wl/times.txt
done

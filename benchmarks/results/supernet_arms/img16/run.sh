#!/usr/bin/env bash
# Recorded copy (ran from scratch/i16/, outputs copied here).
# Session 23: the default space and recipe at 16x16 pixels instead of 12x12: ranking against minutes
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
S=(--set data.image_size=16 --set data.out_dir=scratch/i16/data --set supernet.out_dir=scratch/i16/supernet)
t0=$(date +%s)
evonas stage prepare "${S[@]}" > scratch/i16/prepare.log 2>&1 || exit 1
t1=$(date +%s)
evonas stage pretrain "${S[@]}" > scratch/i16/pretrain.log 2>&1 || exit 1
t2=$(date +%s)
echo "prepare $((t1-t0)) s, pretrain $((t2-t1)) s" > scratch/i16/times.txt
for ss in 99 7 23; do
  a=$(date +%s)
  python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed $ss --repeats 2 --json scratch/i16/r$ss.json > scratch/i16/r$ss.txt 2>&1
  echo "ranking subnet seed $ss: $(( $(date +%s) - a )) s" >> scratch/i16/times.txt
done

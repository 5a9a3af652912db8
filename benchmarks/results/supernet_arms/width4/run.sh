#!/usr/bin/env bash
# Recorded copy (ran from scratch/w4/, outputs copied here).
# Session 24: the default space with MobileNet's width multipliers 0.25/0.5/0.75/1.0 (instead of 0.5/0.75/1.0)
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
D=scratch/w4
S=(--set "space.width_multipliers=[0.25,0.5,0.75,1.0]" --set data.out_dir=$D/data --set supernet.out_dir=$D/supernet)
t0=$(date +%s)
evonas stage prepare "${S[@]}" > $D/prepare.log 2>&1 || exit 1
t1=$(date +%s)
evonas stage pretrain "${S[@]}" > $D/pretrain.log 2>&1 || exit 1
t2=$(date +%s)
echo "prepare $((t1-t0)) s, pretrain $((t2-t1)) s" > $D/times.txt
for ss in 99 7 23; do
  a=$(date +%s)
  python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed $ss --repeats 2 --json $D/r$ss.json > $D/r$ss.txt 2>&1
  echo "ranking subnet seed $ss: $(( $(date +%s) - a )) s" >> $D/times.txt
done

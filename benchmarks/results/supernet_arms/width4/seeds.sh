#!/usr/bin/env bash
# Recorded copy (ran from scratch/w4/, outputs copied here).
# Session 24: supernet seeds 1 and 2 on the 0.25-1.0 width space, ranked against the 2-seed references of run.sh
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
D=scratch/w4
for s in 1 2; do
  S=(--set "space.width_multipliers=[0.25,0.5,0.75,1.0]" --set data.out_dir=$D/data --set supernet.out_dir=$D/supernet_s$s --set supernet.seed=$s)
  a=$(date +%s)
  evonas stage pretrain "${S[@]}" > $D/pretrain_s$s.log 2>&1 || exit 1
  echo "pretrain seed $s: $(( $(date +%s) - a )) s" >> $D/times.txt
  for ss in 99 7 23; do
    python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed $ss --repeats 2 --reference $D/r$ss.json --json $D/s${s}_r$ss.json > $D/s${s}_r$ss.txt 2>&1
  done
  echo "ranked seed $s: $(( $(date +%s) - a )) s" >> $D/times.txt
done

#!/usr/bin/env bash
# Recorded copy: these scripts ran from scratch/arms3/ of the development checkout (outputs there, copied here).
# rarm NAME SUPERNET [KEY=VALUE ...]: rank an existing supernet with evaluation settings, on rec, ho, f23
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
name=$1; sup=$2; shift 2
sets=(--set data.out_dir=scratch/a2/data --set supernet.out_dir=$sup)
for s in "$@"; do sets+=(--set "$s"); done
t1=$(date +%s)
S=(--repeats 2 "${sets[@]}")
python benchmarks/supernet_ranking.py "${S[@]}" --reference benchmarks/results/supernet_arms/width/rec_r2.json --json scratch/arms3/$name.rec.json > scratch/arms3/$name.rec.log 2>&1
python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed 7 --reference benchmarks/results/supernet_arms/width/heldout7_r2.json --json scratch/arms3/$name.ho.json > scratch/arms3/$name.ho.log 2>&1
python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed 23 --reference benchmarks/results/supernet_arms/elastic/prog4.f23.json --json scratch/arms3/$name.f23.json > scratch/arms3/$name.f23.log 2>&1
t2=$(date +%s)
python scratch/arms3/summ3.py "$name"
echo "$name ranking $((t2-t1)) s"

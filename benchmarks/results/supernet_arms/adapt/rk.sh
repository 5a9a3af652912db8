#!/usr/bin/env bash
# Recorded copy: ran from scratch/arms4/ of the development checkout (outputs there, copied here).
# rk NAME SUPERNET_DIR: rank a supernet on the elite-24 set and the 72 stratified subnets (references reused)
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
name=$1; sup=$2
S=(--repeats 2 --set data.out_dir=scratch/a2/data --set supernet.out_dir=$sup)
python scratch/arms4/rank_elite.py "${S[@]}" --reference scratch/arms4/base.el.json --json scratch/arms4/$name.el.json > scratch/arms4/$name.el.log 2>&1
python benchmarks/supernet_ranking.py "${S[@]}" --reference benchmarks/results/supernet_arms/width/rec_r2.json --json scratch/arms4/$name.rec.json > scratch/arms4/$name.rec.log 2>&1
python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed 7 --reference benchmarks/results/supernet_arms/width/heldout7_r2.json --json scratch/arms4/$name.ho.json > scratch/arms4/$name.ho.log 2>&1
python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed 23 --reference benchmarks/results/supernet_arms/elastic/prog4.f23.json --json scratch/arms4/$name.f23.json > scratch/arms4/$name.f23.log 2>&1

#!/usr/bin/env bash
# Recorded copy: these scripts ran from scratch/arms3/ of the development checkout (outputs there, copied here).
# arm NAME [KEY=VALUE ...]: pretrain a supernet variant, rank on rec, ho, f23 against existing references
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
name=$1; shift
sets=(--set data.out_dir=scratch/a2/data --set supernet.out_dir=scratch/a3/$name)
for s in "$@"; do sets+=(--set "$s"); done
t0=$(date +%s)
[ -f scratch/a3/$name/supernet.pt ] || evonas stage pretrain "${sets[@]}" > scratch/arms3/$name.pretrain.log 2>&1 || { echo "$name pretrain failed"; exit 1; }
t1=$(date +%s)
S=(--repeats 2 "${sets[@]}")
python benchmarks/supernet_ranking.py "${S[@]}" --reference benchmarks/results/supernet_arms/width/rec_r2.json --json scratch/arms3/$name.rec.json > scratch/arms3/$name.rec.log 2>&1
python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed 7 --reference benchmarks/results/supernet_arms/width/heldout7_r2.json --json scratch/arms3/$name.ho.json > scratch/arms3/$name.ho.log 2>&1
python benchmarks/supernet_ranking.py "${S[@]}" --subnet-seed 23 --reference benchmarks/results/supernet_arms/elastic/prog4.f23.json --json scratch/arms3/$name.f23.json > scratch/arms3/$name.f23.log 2>&1
t2=$(date +%s)
python scratch/arms3/summ3.py "$name"
echo "$name pretrain $((t1-t0)) s, ranking $((t2-t1)) s"

#!/usr/bin/env bash
# Recorded copy: these scripts ran from scratch/arms3/ of the development checkout (outputs there, copied here).
# farm NAME BASE EPOCHS LR [STAGE] [SEED]: few-shot split of supernet BASE, ranked on rec, ho, f23
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
name=$1; base=$2; ep=$3; lr=$4; stage=${5:--1}; seed=${6:-0}
d=scratch/a3/$name
t0=$(date +%s)
[ -f $d/fewshot.txt ] || python scratch/arms3/fewshot.py scratch/a2/$base $d $ep $lr $stage $seed > scratch/arms3/$name.train.log 2>&1 || { echo "$name train failed"; exit 1; }
t1=$(date +%s)
S=(--repeats 2 --set data.out_dir=scratch/a2/data --set supernet.out_dir=$d)
export FEWSHOT_DIR=$d
python scratch/arms3/rank3.py "${S[@]}" --reference benchmarks/results/supernet_arms/width/rec_r2.json --json scratch/arms3/$name.rec.json > scratch/arms3/$name.rec.log 2>&1
python scratch/arms3/rank3.py "${S[@]}" --subnet-seed 7 --reference benchmarks/results/supernet_arms/width/heldout7_r2.json --json scratch/arms3/$name.ho.json > scratch/arms3/$name.ho.log 2>&1
python scratch/arms3/rank3.py "${S[@]}" --subnet-seed 23 --reference benchmarks/results/supernet_arms/elastic/prog4.f23.json --json scratch/arms3/$name.f23.json > scratch/arms3/$name.f23.log 2>&1
t2=$(date +%s)
python scratch/arms3/summ3.py "$name"
echo "$name train $((t1-t0)) s, ranking $((t2-t1)) s"

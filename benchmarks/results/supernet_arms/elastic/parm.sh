#!/usr/bin/env bash
# Recorded copy: these scripts ran from scratch/arms2/ of the development checkout (outputs there, copied here).
# parm NAME PATCH [KEY=VALUE ...]
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
name=$1; patch=$2; shift 2
sets=(data.out_dir=scratch/a2/data supernet.out_dir=scratch/a2/$name "$@")
t0=$(date +%s)
[ -f scratch/a2/$name/supernet.pt ] || python scratch/arms2/pre.py $patch "${sets[@]}" > scratch/arms2/$name.pretrain.log 2>&1 || { echo "$name pretrain failed"; exit 1; }
t1=$(date +%s)
args=(); for s in "${sets[@]}"; do args+=(--set "$s"); done
python scratch/arms2/rank.py $patch --repeats 2 --reference benchmarks/results/supernet_arms/width/rec_r2.json "${args[@]}" --json scratch/arms2/$name.rec.json > scratch/arms2/$name.rec.log 2>&1
python scratch/arms2/rank.py $patch --repeats 2 --subnet-seed 7 --reference benchmarks/results/supernet_arms/width/heldout7_r2.json "${args[@]}" --json scratch/arms2/$name.ho.json > scratch/arms2/$name.ho.log 2>&1
python scratch/arms2/summ1.py "$name"
echo "$name pretrain $((t1-t0)) s"

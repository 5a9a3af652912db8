#!/usr/bin/env bash
# Recorded copy: these scripts ran from scratch/arms2/ of the development checkout (outputs there, copied here).
# arm NAME [KEY=VALUE ...]: pretrain a supernet variant, then rank it on the recorded and held-out subnets
# against their 2-seed stand-alone references (nothing stand-alone is trained)
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
name=$1; shift
sets=(--set data.out_dir=scratch/a2/data --set supernet.out_dir=scratch/a2/$name)
for s in "$@"; do sets+=(--set "$s"); done
t0=$(date +%s)
if [ ! -f scratch/a2/$name/supernet.pt ]; then
  evonas stage pretrain "${sets[@]}" > scratch/arms2/$name.pretrain.log 2>&1 || { echo "$name pretrain failed"; exit 1; }
fi
t1=$(date +%s)
python benchmarks/supernet_ranking.py --repeats 2 --reference benchmarks/results/supernet_arms/width/rec_r2.json "${sets[@]}" --json scratch/arms2/$name.rec.json > scratch/arms2/$name.rec.log 2>&1
python benchmarks/supernet_ranking.py --repeats 2 --subnet-seed 7 --reference benchmarks/results/supernet_arms/width/heldout7_r2.json "${sets[@]}" --json scratch/arms2/$name.ho.json > scratch/arms2/$name.ho.log 2>&1
t2=$(date +%s)
python scratch/arms2/summ1.py "$name"
echo "$name pretrain $((t1-t0)) s, ranking $((t2-t1)) s"

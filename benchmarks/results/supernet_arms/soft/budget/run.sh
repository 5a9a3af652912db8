#!/usr/bin/env bash
# Ranking against minutes of supernet training, scored on the soft accuracy (issue 16's trade-off): supernets of
# 8, 11, 22 and 44 epochs (default recipe otherwise), each scored on the recorded 24 subnets (4-seed stand-alone
# reference) and on the held-out ones (--subnet-seed 7, 2-seed reference). Reuses the 22-epoch supernets of
# seeds 0-4 (seed 0: artifacts/supernet of `make run`; 1-4: scratch/arms/seedN from arms.sh) and the 8-epoch
# ones (scratch/arms/e8sN); trains the others into scratch/budget/ (about 90 s per 11-epoch and 6 min per
# 44-epoch supernet on 2 cores), then about 40 s per scoring. Run from the repository root.
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p scratch/budget
REC=benchmarks/results/supernet_ranking_repeats4.json
HO=benchmarks/results/supernet_arms/soft/heldout7_seed0.json
score() {  # NAME SUPERNET_DIR EPOCHS SEED
  python benchmarks/supernet_ranking.py --repeats 4 --reference $REC --set supernet.out_dir=$2 \
    --set supernet.epochs=$3 --set supernet.seed=$4 --json scratch/budget/rec_$1.json > scratch/budget/rec_$1.log 2>&1
  python benchmarks/supernet_ranking.py --subnet-seed 7 --repeats 2 --reference $HO --set supernet.out_dir=$2 \
    --set supernet.epochs=$3 --set supernet.seed=$4 --json scratch/budget/ho_$1.json > scratch/budget/ho_$1.log 2>&1
  echo "$1: $(grep -E 'soft' scratch/budget/rec_$1.log | grep -i 'kendall' | head -1) | $(grep -E 'soft' scratch/budget/ho_$1.log | grep -i kendall | head -1)"
}
for e in 11 44; do
  for s in 0 1; do
    d=scratch/budget/e${e}s$s
    if [ ! -f $d/supernet.pt ]; then
      t0=$(date +%s)
      evonas stage pretrain --set supernet.out_dir=$d --set supernet.epochs=$e --set supernet.seed=$s > $d.pretrain.log 2>&1 \
        || { echo "e${e}s$s pretrain failed"; continue; }
      echo "e${e}s$s pretrain $(( $(date +%s)-t0 )) s"
    fi
    score e${e}s$s $d $e $s
  done
done
for s in 0 1 2; do score e8s$s scratch/arms/e8s$s 8 $s; done

#!/usr/bin/env bash
# The training-recipe arms measured on the argmax accuracy before the search ranked on the soft accuracy, scored
# again on the soft accuracy: labels mixed back into distillation (mix05), progressive shrinking (prog), both
# kept by arms.sh in scratch/arms/, and a supernet trained without in-place distillation (trained here, about
# 3 minutes), and supernets trained on augmented batches (evaluation.augmentation: hand_made, shift and rotate; the
# stand-alone reference stays unaugmented), seeds 0 and 1. Same references as run.sh. Run from the repository root.
# Usage: recipes.sh [ARM ...]   (no argument: every arm: mix05 prog nodistill aug)
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p scratch/budget
REC=benchmarks/results/supernet_ranking_repeats4.json
HO=benchmarks/results/supernet_arms/soft/heldout7_seed0.json
score() {  # NAME SUPERNET_DIR --set ...
  n=$1; d=$2; shift 2
  python benchmarks/supernet_ranking.py --repeats 4 --reference $REC --set supernet.out_dir=$d "$@" \
    --json scratch/budget/rec_$n.json > scratch/budget/rec_$n.log 2>&1
  python benchmarks/supernet_ranking.py --subnet-seed 7 --repeats 2 --reference $HO --set supernet.out_dir=$d "$@" \
    --json scratch/budget/ho_$n.json > scratch/budget/ho_$n.log 2>&1
  echo "$n: $(grep -E 'soft' scratch/budget/rec_$n.log | grep -i 'kendall' | head -1) | $(grep -E 'soft' scratch/budget/ho_$n.log | grep -i kendall | head -1)"
}
WANT=" ${*:-mix05 prog nodistill aug} "
want() { [[ "$WANT" == *" $1 "* ]]; }
want mix05 && score mix05 scratch/arms/mix05 --set supernet.distill_label_weight=0.5
want prog && score prog scratch/arms/prog --set "supernet.progressive_epochs=[4, 9, 15]"
if want nodistill; then
  d=scratch/budget/nodistill
  [ -f $d/supernet.pt ] || evonas stage pretrain --set supernet.out_dir=$d --set supernet.distill=false > $d.pretrain.log 2>&1
  score nodistill $d --set supernet.distill=false
fi
if want aug; then
  for s in 0 1; do
    d=scratch/budget/augs$s; A=(--set evaluation.augmentation=hand_made --set supernet.seed=$s)
    [ -f $d/supernet.pt ] || evonas stage pretrain --set supernet.out_dir=$d "${A[@]}" > $d.pretrain.log 2>&1
    score augs$s $d "${A[@]}"
  done
fi

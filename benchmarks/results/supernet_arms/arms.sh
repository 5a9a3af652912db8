#!/usr/bin/env bash
# supernet-side arms against the recorded 4-seed stand-alone reference (run from the repository root;
# writes scratch/arms/; recorded copies of the figures: benchmarks/results/supernet_arms/*.json).
# Usage: arms.sh [ARM ...]   (no argument: every arm)
cd "$(dirname "$0")/../../.."
mkdir -p scratch/arms
export PATH="$PWD/.venv/bin:$PATH"
REF=benchmarks/results/supernet_ranking_repeats4.json
WANT=" ${*:-bn32 bn2 nodistill ep80 lr01 rs4 bn32_again ft1 ft1_bn32 ft1_lr005 ft2 prog mix05 seed1 seed2 e8s0 e8s1 e8s2 seeds_scoring seed3 seed4} "
arm() {
  name=$1; shift
  [[ "$WANT" == *" $name "* ]] || return 0
  sets=()
  for s in "$@"; do sets+=(--set "$s"); done
  t0=$(date +%s)
  if [[ "$name" != bn* && "$name" != ft* ]]; then  # bn*, ft*: scoring-side arms on the existing supernet
    evonas stage pretrain --set supernet.out_dir=scratch/arms/$name "${sets[@]}" > scratch/arms/$name.pretrain.log 2>&1 || { echo "$name pretrain failed"; return; }
    sets+=(--set supernet.out_dir=scratch/arms/$name)
  fi
  t1=$(date +%s)
  python benchmarks/supernet_ranking.py --repeats 4 --reference $REF "${sets[@]}" --json scratch/arms/$name.json > scratch/arms/$name.log 2>&1
  echo "$name pretrain $((t1-t0)) s; $(grep -E 'Kendall tau \(inh' scratch/arms/$name.log)"
}
arm bn32 evaluation.bn_batches=32
arm bn2 evaluation.bn_batches=2
arm nodistill supernet.distill=false
arm ep80 supernet.epochs=80
arm lr01 supernet.lr=0.1
arm rs4 supernet.random_subnets=4
# each trained arm again with BatchNorm recalibrated on 32 batches (no new training)
[[ "$WANT" == *" bn32_again "* ]] && for name in ep80 lr01 rs4; do
  case $name in ep80) s=supernet.epochs=80;; lr01) s=supernet.lr=0.1;; rs4) s=supernet.random_subnets=4;; esac
  python benchmarks/supernet_ranking.py --repeats 4 --reference $REF --set $s --set supernet.out_dir=scratch/arms/$name \
    --set evaluation.bn_batches=32 --json scratch/arms/${name}_bn32.json > scratch/arms/${name}_bn32.log 2>&1
  echo "${name} bn32: $(grep -E 'Kendall tau \(inh' scratch/arms/${name}_bn32.log)"
done
# scoring-side: a short fine-tuning of each subnet from its inherited weights before it is scored
arm ft1 evaluation.inherited_finetune_epochs=1
arm ft1_bn32 evaluation.inherited_finetune_epochs=1 evaluation.bn_batches=32
arm ft1_lr005 evaluation.inherited_finetune_epochs=1 evaluation.inherited_finetune_lr=0.005
arm ft2 evaluation.inherited_finetune_epochs=2
# supernet training (2026-12-02): Once-for-All's progressive shrinking (largest alone for 4 epochs, then kernel,
# depth from epoch 9, expand ratio from 15, of 22), labels mixed back into distillation, and two other supernet
# seeds of the default recipe (how far one supernet's tau moves with its own seed)
arm prog "supernet.progressive_epochs=[4, 9, 15]"
arm mix05 supernet.distill_label_weight=0.5
arm seed1 supernet.seed=1
arm seed2 supernet.seed=2
# two more supernet seeds (2026-12-02): does the average of five supernets rank better than of three?
arm seed3 supernet.seed=3
arm seed4 supernet.seed=4
# three short supernets (8 epochs each, seeds 0-2: together about the cost of one default supernet), whose
# scores are averaged by `supernet_ranking.py --combine` (a supernet ensemble at equal training cost)
arm e8s0 supernet.epochs=8 supernet.seed=0
arm e8s1 supernet.epochs=8 supernet.seed=1
arm e8s2 supernet.epochs=8 supernet.seed=2
# the seed-1 and seed-2 supernets scored as the best scoring-side arms score the default one (no new training)
[[ "$WANT" == *" seeds_scoring "* ]] && for name in seed1 seed2; do
  for sc in "bn32 evaluation.bn_batches=32" "ft1 evaluation.inherited_finetune_epochs=1"; do
    set -- $sc
    python benchmarks/supernet_ranking.py --repeats 4 --reference $REF --set supernet.out_dir=scratch/arms/$name \
      --set "$2" --json scratch/arms/${name}_$1.json > scratch/arms/${name}_$1.log 2>&1
    echo "${name} $1: $(grep -E 'Kendall tau \(inh' scratch/arms/${name}_$1.log)"
  done
done

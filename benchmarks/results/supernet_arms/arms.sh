#!/usr/bin/env bash
# supernet-side arms against the recorded 4-seed stand-alone reference (run from the repository root;
# writes scratch/arms/; recorded copies of the figures: benchmarks/results/supernet_arms/*.json).
# Usage: arms.sh [ARM ...]   (no argument: every arm)
cd "$(dirname "$0")/../../.."
mkdir -p scratch/arms
export PATH="$PWD/.venv/bin:$PATH"
REF=benchmarks/results/supernet_ranking_repeats4.json
WANT=" ${*:-bn32 bn2 nodistill ep80 lr01 rs4 bn32_again ft1 ft1_bn32 ft1_lr005 ft2} "
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

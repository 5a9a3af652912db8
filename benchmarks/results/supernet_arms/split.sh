#!/usr/bin/env bash
# The validation-split arm: the whole chain on Omniglot cut by other writer counts (run from anywhere).
# usage: split.sh NAME TRAIN VAL TEST [--set KEY=VALUE ...]   e.g. split.sh s1064 10 6 4
# Prepares the data, trains the supernet, trains a 4-seed stand-alone reference of 24 subnets and scores
# the supernet against it with and without one epoch of fine-tuning (writes scratch/split/NAME*.json;
# about 35 minutes on 2 cores). Recorded copies: benchmarks/results/supernet_arms/split_*.json.
cd "$(dirname "$0")/../../.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p scratch/split
n=$1; d="[$2,$3,$4]"; shift 4
S=(--set "data.omniglot_drawers=$d" --set data.out_dir=scratch/split/$n/data --set supernet.out_dir=scratch/split/$n/supernet "$@")
t0=$(date +%s)
evonas stage prepare "${S[@]}" > scratch/split/$n.prepare.log 2>&1 || { echo prepare failed; exit 1; }
evonas stage pretrain "${S[@]}" > scratch/split/$n.pretrain.log 2>&1 || { echo pretrain failed; exit 1; }
t1=$(date +%s); echo "$n pretrain $((t1-t0)) s"
python benchmarks/supernet_ranking.py --repeats 4 "${S[@]}" --json scratch/split/$n.json > scratch/split/$n.log 2>&1
echo "$n ranking $(( $(date +%s)-t1 )) s"
python benchmarks/supernet_ranking.py --reference scratch/split/$n.json --repeats 4 "${S[@]}" \
  --set evaluation.inherited_finetune_epochs=1 --json scratch/split/${n}_ft1.json > scratch/split/${n}_ft1.log 2>&1
echo "$n ft1 done $(( $(date +%s)-t1 )) s"

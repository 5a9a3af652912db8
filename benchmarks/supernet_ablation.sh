#!/usr/bin/env bash
# The arms recorded in benchmarks/results/supernet_ablation/ (2026-11-30), run in parallel, one
# process each, on a lent machine with an NVIDIA H200 (evaluation.device auto picked CUDA; about
# 6 minutes for each round; the recorded runs drew the 24 subnets from a pool of 3,000 uniform
# samples, this version's size_stratified from 2,000, so a rerun ranks other subnets).
# Arm names say which data and space:
#   A: image 16, space.stage_strides [2, 2, 1]      B: image 16, [1, 2, 2] (the default strides)
#   C: image 20, [2, 2, 1]                          V4, V5: image 12, [1, 2, 2] (the default)
# s_* stand-alone arms (30 epochs unless named 15), n_* supernet arms (30 epochs unless 15/60;
# "d" = supernet.distill true, "d4" = 4 random subnets per step). V1 / V3 / V5 add --shift
# (augmentation), V2 / V3 / V5 weight decay 5e-4; R16 / R16s retrain B30 / V3 with other seeds.
# Summary: python benchmarks/supernet_ablation.py summarise benchmarks/results/supernet_ablation
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/supernet_ablation}
mkdir -p "$OUT"
A="--set data.image_size=16 --set space.stage_strides=[2,2,1]"
B16="--set data.image_size=16 --set space.stage_strides=[1,2,2]"
C="--set data.image_size=20 --set space.stage_strides=[2,2,1]"
B12="--set data.image_size=12 --set space.stage_strides=[1,2,2]"
run() { name=$1; shift; python3 benchmarks/supernet_ablation.py "$@" --out "$OUT/$name.json" > "$OUT/$name.log" 2>&1 & }
# round 1
run s_A30 standalone $A --epochs 30
run s_A15 standalone $A --epochs 15
run s_B30 standalone $B16 --epochs 30
run s_C30 standalone $C --epochs 30
run s_A30b standalone $A --epochs 30 --set seed=1
run n_A30d supernet $A --set supernet.epochs=30 --set supernet.distill=true
run n_A30 supernet $A --set supernet.epochs=30 --set supernet.distill=false
run n_A60d supernet $A --set supernet.epochs=60 --set supernet.distill=true
run n_A15d supernet $A --set supernet.epochs=15 --set supernet.distill=true
run n_B30d supernet $B16 --set supernet.epochs=30 --set supernet.distill=true
run n_C30d supernet $C --set supernet.epochs=30 --set supernet.distill=true
run n_A30d4 supernet $A --set supernet.epochs=30 --set supernet.distill=true --set supernet.random_subnets=4
run n_A60 supernet $A --set supernet.epochs=60 --set supernet.distill=false
wait
# round 2
run s_V1 standalone $B16 --shift 2
run n_V1 supernet $B16 --shift 2 --set supernet.epochs=30
run s_V2 standalone $B16 --wd 5e-4
run n_V2 supernet $B16 --set supernet.weight_decay=5e-4 --set supernet.epochs=30
run s_V3 standalone $B16 --shift 2 --wd 5e-4
run n_V3 supernet $B16 --shift 2 --set supernet.weight_decay=5e-4 --set supernet.epochs=30
run s_V4 standalone $B12
run n_V4 supernet $B12 --set supernet.epochs=30
run s_V5 standalone $B12 --shift 1 --wd 5e-4
run n_V5 supernet $B12 --shift 1 --set supernet.weight_decay=5e-4 --set supernet.epochs=30
run s_R16 standalone $B16 --seed-offset 1000
run s_R16s standalone $B16 --shift 2 --wd 5e-4 --seed-offset 1000
wait
python3 benchmarks/supernet_ablation.py summarise "$OUT"

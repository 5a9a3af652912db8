#!/usr/bin/env bash
# Recorded copy (ran from the checkout root; outputs under scratch/npz/).
# Session 24: the user-.npz path on the 0.25-1.0 width default (issue 16's held-out data limit)
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
D=scratch/npz
python - <<'PY'
import numpy as np
d = np.load("nas/resources/omniglot_small.npz")
keep = d["character"] < 120
np.savez("scratch/npz/heldout_like.npz", x=d["images"][keep], y=d["character"][keep].astype(np.int64))
PY
S=(--set data.kind=npz --set data.path=$D/heldout_like.npz --set data.out_dir=$D/data --set supernet.out_dir=$D/supernet
   --set surrogate.out_dir=$D/surrogate --set search.out_dir=$D/search --set selection.out_dir=$D/select --set selection.reports_dir=$D/reports)
a=$(date +%s)
evonas run "${S[@]}" > $D/run.log 2>&1; echo "run rc=$? $(( $(date +%s) - a )) s" > $D/times.txt
a=$(date +%s)
python benchmarks/supernet_ranking.py "${S[@]}" --subnets 4 --epochs 2 --json $D/rank.json > $D/rank.txt 2>&1; echo "ranking rc=$? $(( $(date +%s) - a )) s" >> $D/times.txt

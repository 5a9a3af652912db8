#!/usr/bin/env bash
# Recorded copy of what ran (2026-12-04, session 21) from the development checkout.
export PATH=$PWD/.venv/bin:$PATH
python scratch/arms4/sortpre.py data.out_dir=scratch/a2/data supernet.out_dir=scratch/a3/sortprog \
    "supernet.progressive=[0.15,0.3,0.5,0.7]"                     # 129 s; sorts at epochs 11 (hidden) and 15 (width)
scratch/arms3/rarm.sh sortprog scratch/a3/sortprog                  # ranks on the 72 subnets (../fewshot/rarm.sh), 20 s

#!/usr/bin/env bash
# Recorded copy of what ran (2026-12-04, session 21) from the development checkout; scratch/arms4 held these scripts.
# The supernet: the default recipe, seed 0 (scratch/a2/base, session 20's `base` arm); data in scratch/a2/data.
export PATH=$PWD/.venv/bin:$PATH
S="--set data.out_dir=scratch/a2/data --set supernet.out_dir=scratch/a2/base --set surrogate.out_dir=scratch/a4/surrogate --set search.out_dir=scratch/a4/search"
evonas stage surrogate $S && evonas stage search $S                        # the default MSuNAS search on it: 140 evaluated subnets
python scratch/arms4/pick_elite.py                                         # 24 of them, evenly spaced by size -> elite24.json
python scratch/arms4/rank_elite.py --repeats 2 --set data.out_dir=scratch/a2/data --set supernet.out_dir=scratch/a2/base \
    --json scratch/arms4/base.el.json                                      # 2 stand-alone seeds each (1,590 s beside other jobs)
python scratch/arms4/adapt.py scratch/a2/base scratch/a4/search scratch/a4/ad5 5 0.01 60   # adapted to the top 60
python scratch/arms4/adapt.py scratch/a2/base scratch/a4/search scratch/a4/uni5 5 0.01 0   # control: 5 epochs, uniform
scratch/arms4/rk.sh ad5 scratch/a4/ad5; scratch/arms4/rk.sh uni5 scratch/a4/uni5          # rank on elite-24 and the 72
python scratch/arms4/summ4.py base ad5 uni5 > summary.txt

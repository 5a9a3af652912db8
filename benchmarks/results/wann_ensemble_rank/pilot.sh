#!/usr/bin/env bash
# Pilot (validation only): seed 7's split, the search ranking on ensemble_score, 1,000 generations.
set -e
mkdir -p scratch/s27/P7 && cd scratch/s27/P7   # run from the checkout
export PREFECT_HOME=../../../.prefect
S="--set seed=7 --set search.population=256 --set search.generations=1000 --set search.objectives=[ensemble_score,connections]"
date
../../../.venv/bin/evonas stage prepare --params ../../../examples/wann_digits.yaml $S
time ../../../.venv/bin/evonas stage search --params ../../../examples/wann_digits.yaml $S
date

#!/usr/bin/env bash
# Runs the three NAS-Bench-201 settings of benchmarks/results/nb201.md (20 seeds, all strategies).
# Usage: bash benchmarks/nb201.sh [TABLE] [OUTDIR]
set -euo pipefail
TABLE=${1:-../shared/benchdata/nb201_cifar10.csv}
OUT=${2:-benchmarks/results/nb201}
mkdir -p "$OUT"
EVONAS=${EVONAS:-.venv/bin/evonas}
common=(--table "$TABLE" --budgets 25,50,100,200,300 --seeds 20 --strategies all)
$EVONAS benchmark "${common[@]}" --signal-column test_acc_200ep --report-column test_acc_200ep \
  --out "$OUT/single_test.csv" | tee "$OUT/single_test.txt"
$EVONAS benchmark "${common[@]}" --signal-column val_acc_12ep --report-column test_acc_200ep \
  --out "$OUT/single_val12.csv" | tee "$OUT/single_val12.txt"
$EVONAS benchmark "${common[@]}" --signal-column val_acc_12ep --report-column test_acc_200ep \
  --cost-columns latency_raspi4_ms --out "$OUT/multi_latency.csv" | tee "$OUT/multi_latency.txt"
.venv/bin/python benchmarks/nb201_report.py "$OUT" benchmarks/results/nb201.md

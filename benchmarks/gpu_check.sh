#!/usr/bin/env bash
# The GPU check of benchmarks/results/gpu_check/ (2026-12-04): run once on a lent machine with an
# NVIDIA H200 and 16 CPU cores, whose Python (3.12) already holds torch with CUDA. The packages it
# lacks travel as wheels in .whl/ (Python 3.12 builds of requirements.lock's pins, DVC and the docs
# tools left out) and are installed beside it. Three parts, each bounded by `timeout`:
#   1. benchmarks/gpu_check.py: repeatability, CUDA against CPU, seconds per supernet epoch;
#   2. the test files that train networks, on CUDA (evaluation.device auto picks it);
#   3. the default `evonas run` (what `make run` runs), on CUDA, timed.
# Outputs go to $OUT (the tool's folder of files to bring back), or benchmarks/results/gpu_check.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 PREFECT_HOME=$PWD/.prefect DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
nvidia-smi -L; python3 -c "import torch, numpy, pandas; print('torch', torch.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__)"
S=${GPU_CHECK_SECONDS:-200}
T=${GPU_TEST_SECONDS:-110}
R=${GPU_RUN_SECONDS:-240}
echo "== 1. gpu_check.py"
timeout $S python3 benchmarks/gpu_check.py --epochs 3 --json "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.txt"
echo "== 2. tests on CUDA"
timeout $T python3 -m pytest -q -p no:cacheprovider -n 8 --dist loadfile -W "default::UserWarning" \
  tests/test_supernet.py tests/test_standalone.py tests/test_autoinit.py tests/test_backends.py tests/test_export.py \
  tests/test_meta.py tests/test_surrogates.py tests/test_cells.py 2>&1 | tee "$OUT/tests_cuda.txt" | tail -25
echo "== 3. evonas run (default params) on CUDA"
start=$(date +%s)
timeout $R python3 -c "import sys; from flows.cli import main; sys.argv[0] = 'evonas'; main()" run --params params.yaml \
  2>&1 | tee "$OUT/run_cuda.txt" | grep -v "^\s*$" | tail -40
echo "evonas run: rc ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s wall"
cp reports/metrics.json "$OUT/run_cuda_metrics.json" 2>/dev/null || true
cp reports/surrogate.json "$OUT/run_cuda_surrogate.json" 2>/dev/null || true

#!/usr/bin/env bash
# Second part of the GPU check (benchmarks/results/gpu_check/): the default `evonas run` twice on
# CUDA from nothing, and every artifact that does not depend on the latency table compared bit for
# bit (the latency table is timed afresh by each run, so the search and what follows it differ
# between any two runs, on a CPU too). Same setting-up as gpu_check.sh.
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
for i in 1 2; do
  rm -rf artifacts reports data/prepared
  timeout ${GPU_RUN_SECONDS:-200} python3 -c "import sys; from flows.cli import main; sys.argv[0] = 'evonas'; main()" \
    run --params params.yaml > "$OUT/repeat_run$i.txt" 2>&1; echo "run $i: rc $?; $(grep 'pipeline finished' "$OUT/repeat_run$i.txt")"
  mkdir -p /tmp/rep$i && cp -r artifacts data/prepared /tmp/rep$i/
done
python3 - <<'PY' 2>&1 | tee "$OUT/repeat_compare.txt"
import hashlib, pathlib
a, b = pathlib.Path("/tmp/rep1"), pathlib.Path("/tmp/rep2")
for f in sorted(p for p in a.rglob("*") if p.is_file()):
    g = b / f.relative_to(a)
    same = g.exists() and hashlib.sha256(f.read_bytes()).digest() == hashlib.sha256(g.read_bytes()).digest()
    note = ""
    if not same and g.exists() and f.suffix == ".parquet":
        import pandas as pd
        x, y = pd.read_parquet(f), pd.read_parquet(g)
        cols = [c for c in x.columns if "acc" in c and c in y.columns]
        note = "; accuracy columns " + ", ".join(f"{c} {'equal' if x[c].equals(y[c]) else 'differ'}" for c in cols)
    print(("same     " if same else "DIFFERENT"), f.relative_to(a), note)
PY

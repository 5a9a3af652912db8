"""`evonas run` end to end in a fresh folder: real Prefect flow runs, a real Dask LocalCluster,
real training on digits, real exports; then the Prefect API is asked what it recorded."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, TINY

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def write_tiny_params(folder: Path) -> Path:
    from nas.config import apply_overrides

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(apply_overrides(raw, TINY)))
    return path


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    write_tiny_params(work)
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect")}
    env.pop("PREFECT_API_URL", None)
    exe = Path(sys.executable).parent / "evonas"
    proc = subprocess.run([str(exe), "run", "--params", "params.yaml"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return work, env, proc


def test_outputs_and_reports(pipeline_run):
    work, _, proc = pipeline_run
    assert "Pareto front" in proc.stdout
    assert (work / "data/prepared/data.npz").is_file()
    assert (work / "artifacts/supernet/supernet.pt").is_file()
    assert (work / "artifacts/surrogate/samples.json").is_file()
    gens = sorted(p.name for p in (work / "artifacts/search/populations").glob("gen_*.parquet"))
    assert gens == ["gen_000.parquet", "gen_001.parquet", "gen_002.parquet"]
    pop = pd.read_parquet(work / "artifacts/search/populations/gen_001.parquet")
    assert {"genome", "val_accuracy", "params", "flops", "latency_ms", "status", "eval_seconds", "worker"} <= set(pop.columns)
    assert pop.worker.str.startswith("tcp://127.0.0.1:").all()

    front = pd.read_csv(work / "artifacts/select/pareto.csv")
    for col in ("candidate_id", "genome", "val_accuracy", "params", "flops", "latency_ms", "selected", "test_accuracy"):
        assert col in front.columns
    assert front.selected.any()
    assert front.loc[front.selected, "test_accuracy"].notna().all()
    assert front.loc[~front.selected, "test_accuracy"].isna().all()
    # the front is non-dominated on the configured objectives (val_accuracy up, params and latency down)
    F = np.column_stack([-front.val_accuracy, front.params, front.latency_ms])
    for i in range(len(F)):
        assert not any((F[j] <= F[i]).all() and (F[j] < F[i]).any() for j in range(len(F)) if j != i)

    for cid in front.loc[front.selected, "candidate_id"]:
        for ext in ("onnx", "pt2", "json"):
            assert (work / f"artifacts/select/models/{cid}.{ext}").is_file()
        card = json.loads((work / f"artifacts/select/models/{cid}.json").read_text())
        assert card["onnx_max_abs_diff"] < 1e-4

    metrics = json.loads((work / "reports/metrics.json").read_text())
    for key in ("n_evaluated", "n_pareto", "hypervolume", "best_val_accuracy", "best_test_accuracy", "wall_seconds"):
        assert key in metrics
    assert set(metrics["stage_seconds"]) == {"prepare", "pretrain", "surrogate", "search", "select"}
    assert metrics["n_pareto"] == len(front) and metrics["n_evaluated"] >= 6
    assert 0 < metrics["hypervolume"] <= 1
    assert (work / "reports/pareto.png").stat().st_size > 10_000
    surrogate = json.loads((work / "reports/surrogate.json").read_text())
    assert -1 <= surrogate["kendall_tau"] <= 1 and surrogate["n_holdout"] >= 3
    hv = pd.read_csv(work / "reports/hypervolume.csv")
    assert list(hv.columns) == ["evaluations", "hypervolume"] and len(hv) == metrics["n_evaluated"]


def test_show_prints_the_last_front(pipeline_run):
    work, env, _ = pipeline_run
    proc = subprocess.run([str(Path(sys.executable).parent / "evonas"), "show"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    front = pd.read_csv(work / "artifacts/select/pareto.csv")
    for cid in front.candidate_id:
        assert cid in proc.stdout


def test_prefect_recorded_the_parent_run_stage_runs_and_artifacts(pipeline_run):
    work, env, _ = pipeline_run
    script = """
import asyncio, json
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as c:
        runs = await c.read_flow_runs()
        flows = {f.id: f.name for f in await c.read_flows()}
        arts = await c.read_artifacts()
        print(json.dumps({"runs": [[flows[r.flow_id], r.state_type.value, r.name] for r in runs],
                          "artifacts": {a.key: a.data for a in arts if a.key}}))
asyncio.run(main())
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    names = {name: state for name, state, _ in out["runs"]}
    assert names.get("evonas-pipeline") == "COMPLETED"
    run_names = {name: run for name, _, run in out["runs"]}
    assert run_names["evonas-pipeline"] == "evonas-elastic_cnn-msunas-seed0"
    assert run_names["search"] == "search-elastic_cnn-msunas-seed0"
    for stage in ("prepare", "pretrain", "surrogate", "search", "select"):
        assert names.get(stage) == "COMPLETED", names
    assert "pareto-front" in out["artifacts"] and "run-summary" in out["artifacts"]
    front = pd.read_csv(work / "artifacts/select/pareto.csv")
    table = out["artifacts"]["pareto-front"]
    table = json.loads(table) if isinstance(table, str) else table
    assert {row["candidate_id"] for row in table} == set(front.candidate_id)

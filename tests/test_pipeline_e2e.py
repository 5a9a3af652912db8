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
def pipeline_run(tmp_path_factory, prefect_server):
    """The pipeline run against a real Prefect server (``evonas ui`` on a free port)."""
    work = tmp_path_factory.mktemp("e2e")
    write_tiny_params(work)
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect"), "PREFECT_API_URL": prefect_server["api"]}
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
    # the front is non-dominated on the configured objectives (val_soft_accuracy up, params and latency down)
    F = np.column_stack([-front.val_soft_accuracy, front.params, front.latency_ms])
    for i in range(len(F)):
        assert not any((F[j] <= F[i]).all() and (F[j] < F[i]).any() for j in range(len(F)) if j != i)

    for cid in front.loc[front.selected, "candidate_id"]:
        for ext in ("onnx", "pt2", "json"):
            assert (work / f"artifacts/select/models/{cid}.{ext}").is_file()
        card = json.loads((work / f"artifacts/select/models/{cid}.json").read_text())
        assert card["onnx_max_abs_diff"] < 1e-4

    metrics = json.loads((work / "reports/metrics.json").read_text())
    for key in ("n_evaluated", "n_pareto", "hypervolume", "best_val_accuracy", "test_accuracy", "reported_model", "wall_seconds"):
        assert key in metrics
    assert set(metrics["stage_seconds"]) == {"prepare", "pretrain", "surrogate", "search", "select"}
    assert metrics["n_pareto"] == len(front) and metrics["n_evaluated"] >= 6
    assert 0 < metrics["hypervolume"] <= 1
    assert (work / "reports/pareto.png").stat().st_size > 10_000
    surrogate = json.loads((work / "reports/surrogate.json").read_text())
    assert -1 <= surrogate["kendall_tau"] <= 1 and surrogate["n_holdout"] >= 3
    assert surrogate["predicts"] == "val_soft_accuracy"  # the search's own score, as params.yaml names it
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


def test_report_is_a_self_contained_html_page(pipeline_run):
    work, env, _ = pipeline_run
    proc = subprocess.run([str(Path(sys.executable).parent / "evonas"), "report"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = (work / "reports/report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # the front and the hypervolume curve, embedded
    assert "http://" not in page and "https://" not in page and "<script" not in page  # nothing fetched
    front = pd.read_csv(work / "artifacts/select/pareto.csv")
    for cid in front.candidate_id:
        assert cid in page
    for cid in front.loc[front.selected, "candidate_id"]:
        assert f"<h3>{cid}</h3>" in page  # its model card


def test_prefect_recorded_the_parent_run_stage_runs_and_artifacts(pipeline_run):
    work, env, _ = pipeline_run
    script = """
import asyncio, json
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as c:
        runs = [r for r in await c.read_flow_runs() if r.deployment_id is None]  # not scheduled deployment runs
        flows = {f.id: f.name for f in await c.read_flows()}
        arts = await c.read_latest_artifacts()
        print(json.dumps({"runs": [[flows[r.flow_id], r.state_type.value, r.name] for r in runs],
                          "tags": {r.name: r.tags for r in runs},
                          "parents": {r.name: str(r.parent_task_run_id) if r.parent_task_run_id else None for r in runs},
                          "params": {r.name: sorted(r.parameters) for r in runs},
                          "api": str(c.api_url),
                          "artifacts": {a.key: a.data for a in arts if a.key},
                          "artifact_types": {a.key: a.type for a in arts if a.key}}))
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
    assert out["api"].startswith(env["PREFECT_API_URL"])  # recorded by the real server, not an ephemeral one
    assert "pareto-front" in out["artifacts"] and "run-summary" in out["artifacts"]
    # tags and parameters, on the parent and on every stage run
    tags = out["tags"]["evonas-elastic_cnn-msunas-seed0"]
    assert {"evonas", "space:elastic_cnn", "strategy:msunas", "mode:generational", "seed:0"} <= set(tags)
    assert set(tags) <= set(out["tags"]["search-elastic_cnn-msunas-seed0"])
    assert "cfg" in out["params"]["evonas-elastic_cnn-msunas-seed0"]
    assert all(out["parents"][f"{s}-elastic_cnn-msunas-seed0"] for s in ("prepare", "search", "select"))
    # progress during search: evaluations done / budget reached 100 %; hypervolume per generation
    assert out["artifact_types"]["search-progress"] == "progress" and float(out["artifacts"]["search-progress"]) == 100.0
    hv = out["artifacts"]["hypervolume-per-generation"]
    hv = json.loads(hv) if isinstance(hv, str) else hv
    assert [row["generation"] for row in hv] == [0, 1, 2] and all(0 < row["hypervolume"] <= 1 for row in hv)
    summary = out["artifacts"]["run-summary"]
    assert "hypervolume" in summary and "artifacts/select/models" in summary
    front = pd.read_csv(work / "artifacts/select/pareto.csv")
    table = out["artifacts"]["pareto-front"]
    table = json.loads(table) if isinstance(table, str) else table
    assert {row["candidate_id"] for row in table} == set(front.candidate_id)


def test_ui_run_page_renders_in_headless_chromium(pipeline_run, prefect_server, tmp_path):
    """The UI's page of the pipeline run, rendered by headless Chromium: its DOM names the run
    and its stage runs, and a screenshot is saved (``make ui-check`` installs Chromium and
    keeps the screenshot in reports/ui-run.png)."""
    import asyncio
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium is not installed (Debian package 'chromium'); `make ui-check` installs it and runs this")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def parent_id():
        async with get_client() as c:
            runs = await c.read_flow_runs(flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=["evonas-elastic_cnn-msunas-seed0"])))
            return str(runs[0].id)

    with temporary_settings({PREFECT_API_URL: prefect_server["api"]}):
        run_id = asyncio.run(parent_id())
    url = f"{prefect_server['url']}/runs/flow-run/{run_id}"
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000",
            "--virtual-time-budget=20000"]
    dom = subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "evonas-elastic_cnn-msunas-seed0" in dom, dom[-2000:]
    assert "Completed" in dom
    shot = tmp_path / "run.png"
    subprocess.run(args + [f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000
    keep = os.environ.get("EVONAS_UI_SCREENSHOT")
    if keep:
        shutil.copy2(shot, keep)

"""Operations: the Prefect UI server, schedules (serve, prefect.yaml deploy), the Dask
dashboard, Slurm job scripts, and the infra/ files (validated offline)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, stop_group

BIN = Path(sys.executable).parent


def _client_call(api: str, fn):
    """Run ``fn(client)`` against the Prefect API at ``api``."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go():
        async with get_client() as c:
            return await fn(c)

    with temporary_settings({PREFECT_API_URL: api}):
        return asyncio.run(go())


# ----------------------------------------------------------------------------- Prefect server


@pytest.mark.integration
def test_evonas_ui_serves_the_api_and_prints_how_to_use_it(prefect_server):
    import urllib.request

    with urllib.request.urlopen(prefect_server["url"] + "/api/health", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(prefect_server["url"] + "/", timeout=5) as r:
        assert r.status == 200 and b"<html" in r.read(4096).lower()  # the UI itself
    log = prefect_server["log"].read_text()
    assert f"export PREFECT_API_URL={prefect_server['api']}" in log
    assert f"127.0.0.1:{prefect_server['port']}" in log


@pytest.mark.integration
def test_serve_registers_the_pipeline_with_a_cron_schedule(prefect_server, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_server["api"], "PREFECT_HOME": str(tmp_path / ".prefect")}
    proc = subprocess.Popen([str(BIN / "evonas"), "serve", "--cron", "0 2 * * *", "--name", "nightly-test",
                             "--params", str(ROOT / "params.yaml"), "--set", "search.generations=3"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        dep = None
        while dep is None:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.time() < deadline, "the deployment did not appear"
            try:
                dep = _client_call(prefect_server["api"],
                                   lambda c: c.read_deployment_by_name("evonas-pipeline/nightly-test"))
            except Exception:  # noqa: BLE001 - not registered yet
                time.sleep(1)
        assert [s.schedule.cron for s in dep.schedules] == ["0 2 * * *"]
        assert dep.schedules[0].active
        assert dep.parameters["cfg"]["search"]["generations"] == 3
        assert "evonas" in dep.tags
    finally:
        stop_group(proc, 20)


def test_serve_rejects_a_bad_cron(tmp_path):
    proc = subprocess.run([str(BIN / "evonas"), "serve", "--cron", "every night", "--params", str(ROOT / "params.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--cron 'every night'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.integration
def test_prefect_deploy_registers_prefect_yaml(prefect_server, tmp_path):
    """`prefect deploy --all` with the committed prefect.yaml, against the local server."""
    work = tmp_path / "project"
    for name in ("prefect.yaml", "params.yaml"):
        work.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, work / name)
    shutil.copytree(ROOT / "flows", work / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PREFECT_API_URL": prefect_server["api"], "PREFECT_HOME": str(tmp_path / ".prefect")}
    prefect = str(BIN / "prefect")
    for args in ([prefect, "work-pool", "create", "evonas-pool", "--type", "process"],
                 [prefect, "--no-prompt", "deploy", "--all"]):
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    dep = _client_call(prefect_server["api"], lambda c: c.read_deployment_by_name("evonas-pipeline/nightly"))
    assert dep.work_pool_name == "evonas-pool" and dep.entrypoint == "flows/pipeline.py:pipeline_flow"
    assert [s.schedule.cron for s in dep.schedules] == ["0 2 * * *"]
    assert dep.parameters == {"params_file": "params.yaml"}


# ----------------------------------------------------------------------------- Dask


@pytest.mark.integration
def test_the_dask_dashboard_address_is_logged():
    from nas.evaluators.dask import DaskPool

    lines: list[str] = []
    with DaskPool(workers=1, log=lines.append) as pool:
        link = pool.dashboard_link
    assert link and re.match(r"http://127\.0\.0\.1:\d+/status", link)
    assert any(f"dashboard {link}" in line for line in lines)


def test_slurm_cluster_writes_the_configured_job_script(tmp_path):
    from nas.config import ConfigError
    from nas.evaluators.dask import slurm_cluster
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, ["evaluation.cluster=slurm", "evaluation.slurm.queue=gpu", "evaluation.slurm.account=nas",
                                 "evaluation.slurm.cores=2", "evaluation.slurm.memory=8GB",
                                 "evaluation.slurm.walltime=01:30:00", "evaluation.slurm.job_extra_directives=[--gres=gpu:1]",
                                 f"evaluation.slurm.log_directory={tmp_path / 'logs'}"])
    from nas.factory import build_pool

    pool = build_pool(cfg)
    assert pool.cluster == "slurm"
    cluster = slurm_cluster(pool.slurm)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -A nas", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=8G",
                 "#SBATCH -t 01:30:00", "#SBATCH --gres=gpu:1"):
        assert line in script
    assert "distributed.cli.dask_worker" in script and "--nthreads 2" in script
    with pytest.raises(ConfigError, match="leave evaluation.scheduler_address unset"):
        tiny_config(tmp_path, ["evaluation.cluster=slurm", "evaluation.scheduler_address=tcp://127.0.0.1:8786"])


# ----------------------------------------------------------------------------- infra/ files


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_compose_file_defines_server_scheduler_workers_and_pipeline():
    doc = yaml.safe_load((ROOT / "infra/docker-compose.yml").read_text())
    services = doc["services"]
    assert {"prefect-server", "dask-scheduler", "dask-worker", "pipeline"} <= set(services)
    for name, svc in services.items():
        assert svc["image"] == "evonas:latest" and isinstance(svc["command"], list), name
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
    assert services["prefect-server"]["build"]["dockerfile"] == "infra/Dockerfile"
    assert (ROOT / "infra" / services["prefect-server"]["build"]["context"] / "infra/Dockerfile").is_file()
    assert "tcp://dask-scheduler:8786" in services["dask-worker"]["command"]
    assert "evaluation.scheduler_address=tcp://dask-scheduler:8786" in services["pipeline"]["command"]
    assert services["pipeline"]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert services["dask-worker"]["deploy"]["replicas"] >= 1


def test_dockerfile_copies_what_exists_and_pins_the_lock():
    text = (ROOT / "infra/Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _ = line.split()
        for src in sources:
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    assert "pip install -r requirements.lock" in text and re.search(r"^USER ", text, re.M)


def test_kubernetes_manifests_have_the_expected_kinds_and_fields():
    docs = [d for f in sorted((ROOT / "infra/k8s").glob("*.yaml")) for d in _docs(f)]
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "DaskCluster", "Deployment", "Service", "ConfigMap"} <= kinds
    for d in docs:
        assert d["apiVersion"] and d["metadata"]["name"], d
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "evonas"
    dask = next(d for d in docs if d["kind"] == "DaskCluster")
    assert dask["apiVersion"] == "kubernetes.dask.org/v1"
    assert dask["spec"]["worker"]["replicas"] >= 1
    assert dask["spec"]["worker"]["spec"]["containers"][0]["args"][:2] == ["dask", "worker"]
    assert dask["spec"]["scheduler"]["spec"]["containers"][0]["args"] == ["dask", "scheduler"]
    ports = {p["port"] for p in dask["spec"]["scheduler"]["service"]["ports"]}
    assert 8786 in ports
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        spec = dep["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert spec["template"]["spec"]["containers"][0]["image"] == "evonas:latest"
    worker = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "prefect-worker")
    cmd = worker["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[:3] == ["prefect", "worker", "start"] and "evonas-pool" in cmd
    assert yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"][0]["work_pool"]["name"] == "evonas-pool"


def test_slurm_recipe_selects_the_slurm_cluster():
    text = (ROOT / "infra/slurm/evonas.sbatch").read_text()
    assert text.startswith("#!/bin/bash") and "#SBATCH --job-name" in text
    assert "evaluation.cluster=slurm" in text
    assert subprocess.run(["bash", "-n", str(ROOT / "infra/slurm/evonas.sbatch")]).returncode == 0


def test_prefect_yaml_points_at_the_pipeline_flow():
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    dep = doc["deployments"][0]
    path, fn = dep["entrypoint"].split(":")
    assert (ROOT / path).is_file()
    from flows import pipeline

    flow = getattr(pipeline, fn)
    assert flow.name == "evonas-pipeline" and set(dep["parameters"]) <= set(flow.parameters.properties)
    from prefect.client.schemas.schedules import CronSchedule

    CronSchedule(cron=dep["schedules"][0]["cron"])

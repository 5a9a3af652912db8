"""`dvc repro` in a temporary copy of the repository, and the partial-rerun property."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TINY

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sh(args, cwd, env, timeout=900):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def test_dvc_repro_and_partial_rerun(tmp_path):
    from nas.config import apply_overrides

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for f in files:
        if (ROOT / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(apply_overrides(raw, TINY)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PREFECT_HOME": str(tmp_path / ".prefect"), "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("PREFECT_API_URL", None)
    sh(["git", "init", "-q"], repo, env)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "copy"], repo, env)

    out = sh(["dvc", "repro"], repo, env)
    for stage in ("prepare", "pretrain", "surrogate", "search", "select"):
        assert f"Running stage '{stage}'" in out
    assert (repo / "reports/metrics.json").is_file() and (repo / "dvc.lock").is_file()
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()
    assert "n_pareto" in sh(["dvc", "metrics", "show"], repo, env)

    # change one search.* value: only search and select rerun
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["search"]["generations"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    out = sh(["dvc", "repro"], repo, env)
    assert "Running stage 'search'" in out and "Running stage 'select'" in out
    for stage in ("prepare", "pretrain", "surrogate"):
        assert f"Running stage '{stage}'" not in out
        assert f"Stage '{stage}' didn't change" in out
    gens = sorted(p.name for p in (repo / "artifacts/search/populations").glob("gen_*.parquet"))
    assert gens == ["gen_000.parquet", "gen_001.parquet"]
    html = sh(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo, env)
    index = (tmp_path / "plots" / "index.html").read_text()
    assert '"title": "hypervolume"' in index and '"title": "evaluations"' in index, html  # the curve
    assert '"title": "val_accuracy"' in index and '"title": "params"' in index  # the front scatter
    assert 'id="reports_pareto_png"' in index

    # an experiment in async mode (`dvc exp run -S`): only search and select rerun, and
    # `dvc exp show` lists the experiment with its metrics
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "one generation"], repo, env)
    out = sh(["dvc", "exp", "run", "-n", "async-exp", "-S", "search.mode=async", "-S", "search.async.budget=10",
              "-S", "search.async.in_flight=4"], repo, env)
    assert "Running stage 'search'" in out and "Running stage 'pretrain'" not in out
    show = sh(["dvc", "exp", "show", "--csv"], repo, env)
    assert "async-exp" in show and "n_pareto" in show and "async" in show

    # a local DVC remote round trip: push, delete the outputs and the cache, pull, clean status
    remote = tmp_path / "remote"
    sh(["dvc", "remote", "add", "-d", "localremote", str(remote)], repo, env)
    sh(["dvc", "push"], repo, env)
    assert any(remote.rglob("*")), "dvc push wrote nothing to the remote"
    before = {p.relative_to(repo): p.read_bytes() for p in (repo / "artifacts/search/populations").glob("*.parquet")}
    for out_dir in ("data/prepared", "artifacts"):
        shutil.rmtree(repo / out_dir)
    shutil.rmtree(repo / ".dvc/cache")
    sh(["dvc", "pull"], repo, env)
    after = {p.relative_to(repo): p.read_bytes() for p in (repo / "artifacts/search/populations").glob("*.parquet")}
    assert after == before and (repo / "artifacts/supernet/supernet.pt").is_file()
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()

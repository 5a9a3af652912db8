"""`dvc repro` in a temporary copy of the repository, and the partial-rerun property."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from tests.conftest import TINY, repo_copy, sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_dvc_repro_and_partial_rerun(tmp_path, runs_api):
    repo, env = repo_copy(tmp_path, TINY, runs_api)

    out = sh(["dvc", "repro"], repo, env)
    for stage in ("prepare", "pretrain", "surrogate", "search", "select"):
        assert f"Running stage '{stage}'" in out
    assert (repo / "reports/metrics.json").is_file() and (repo / "dvc.lock").is_file()
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()
    assert "n_pareto" in sh(["dvc", "metrics", "show"], repo, env)

    # an edit of the training loop changes what the search computes: dvc notices
    training = repo / "nas/training.py"
    original = training.read_text()
    training.write_text(original + "\n# an edit\n")
    status = sh(["dvc", "status"], repo, env)
    assert "search:" in status and "pretrain:" in status and "modified:" in status and "nas/training.py" in status
    assert "prepare:" not in status  # preparing the data does not run the training loop
    training.write_text(original)
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()

    # `dvc exp show` lists the run with its metrics (an experiment that changes one search.*
    # value reruns only search and select: test_codeepneat_search_under_dvc_in_both_modes)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "first run"], repo, env)
    show = sh(["dvc", "exp", "show", "--csv"], repo, env)
    assert "n_pareto" in show and "workspace" in show

    html = sh(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo, env)
    index = (tmp_path / "plots" / "index.html").read_text()
    assert '"title": "hypervolume"' in index and '"title": "evaluations"' in index, html  # the curve
    assert '"title": "val_accuracy"' in index and '"title": "params"' in index  # the front scatter
    assert 'id="reports_pareto_png"' in index

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


def test_dvc_repro_runs_a_table_search_the_stages_it_does_not_use_record_a_skip(synthetic, tmp_path, runs_api):
    """Every kind of search runs under `dvc repro` (issue 17): with a NAS-Bench-201-shaped table
    the prepare, pretrain and surrogate stages record that they were skipped and succeed."""
    from tests.conftest import synthetic_table_sets

    sets = [*synthetic_table_sets(synthetic), "search.population=6", "search.generations=4", "evaluation.workers=1",
            "evaluation.table.sim_seconds=0.1", "selection.n_spread=1"]
    repo, env = repo_copy(tmp_path, sets, runs_api)

    # a `dvc repro` killed during the search continues from the checkpoint on the next one
    # (DVC deletes the stage's outputs first; the run folder is not among them) and ends with
    # the archive of an uninterrupted run
    proc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    second = repo / "artifacts/search/populations/gen_001.parquet"
    deadline = time.time() + 600
    while not second.exists():
        assert proc.poll() is None, "dvc repro ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (repo / "artifacts/search/summary.json").exists()

    out = sh(["dvc", "repro"], repo, env)
    assert "resuming from" in out
    for note in ("data/prepared/skipped.json", "artifacts/supernet/skipped.json", "artifacts/surrogate/skipped.json",
                 "reports/surrogate.json"):  # the stages a table search does not use record a skip
        doc = json.loads((repo / note).read_text())
        assert doc["skipped"] and doc["evaluation_kind"] == "table" and "is not used" in doc["reason"]
    summary = json.loads((repo / "artifacts/search/summary.json").read_text())
    assert summary["resumed_from_generation"] >= 1
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["n_evaluated"] == 30 and metrics["n_pareto"] >= 1
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()

    import pandas as pd

    from nas import stages
    from tests.conftest import tiny_config

    stages.run_search(tiny_config(tmp_path / "ref", sets))  # uninterrupted, in this process
    cols = ["candidate_id", "genome", "val_accuracy", "lat_ms", "status", "generation"]
    read = lambda root: pd.concat([pd.read_parquet(f) for f in sorted((root / "artifacts/search/populations")  # noqa: E731
                                                                       .glob("gen_*.parquet"))], ignore_index=True)[cols]
    pd.testing.assert_frame_equal(read(repo), read(tmp_path / "ref"))

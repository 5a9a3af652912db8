"""Each meta-learning search end to end through `evonas run` with its committed example (real
Prefect flow runs, Dask workers, real training), then an architecture search that trains every
candidate with the three components found (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nas.meta.components import resolve
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY = ["data.kind=digits", "data.image_size=null", "search.population=4", "search.generations=1",
        "evaluation.meta.epochs=2", "evaluation.meta.channels=[8, 16]", "evaluation.meta.select_top=2",
        "evaluation.meta.select_seeds=1", "evaluation.meta.test_seeds=2"]


def evonas(args: list[str], cwd: Path, api: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_HOME": str(cwd / ".prefect"), "PREFECT_API_URL": api}
    proc = subprocess.run([str(Path(sys.executable).parent / "evonas"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_each_meta_search_runs_from_its_example_and_an_architecture_search_uses_what_they_found(tmp_path, runs_api):
    """The activation and augmentation searches through `evonas run`, the loss search as DVC users
    run it (`evonas config` turns the example into params.yaml; `dvc repro` runs prepare, records
    that pretrain and surrogate were skipped, searches with CMA-ES and writes loss.json; a second
    `dvc repro` has nothing to do); then an architecture search trains with all three found."""
    from tests.conftest import repo_copy, sh

    found = {}
    for comp in ("activation", "loss", "augmentation"):
        if comp == "loss":
            where, env = repo_copy(tmp_path / "dvc", [], runs_api)
            sh(["evonas", "config", "--params", "examples/meta_loss.yaml", *[a for s in TINY for a in ("--set", s)],
                "--out", "params.yaml", "--force"], where, env)
            assert "Running stage 'select'" in sh(["dvc", "repro"], where, env)
            for note in ("artifacts/supernet/skipped.json", "artifacts/surrogate/skipped.json"):
                assert json.loads((where / note).read_text())["evaluation_kind"] == "meta"
            assert "up to date" in sh(["dvc", "status"], where, env).lower()
        else:
            where = tmp_path
            proc = evonas(["run", "--params", str(ROOT / f"examples/meta_{comp}.yaml"),
                           *[a for s in TINY for a in ("--set", s)]], where, runs_api)
            said = proc.stdout + proc.stderr  # the table on stdout, progress and the summary on stderr
        path = where / f"artifacts/meta_{comp}/select/{comp}.json"
        doc = json.loads(path.read_text())
        assert doc["component"] == comp and doc["found_on"]["data"] == "digits"
        assert resolve(comp, str(path)) == doc["value"]  # usable as a param as written
        if comp == "loss":
            assert len(doc["value"]["theta"]) == 8
        metrics = json.loads((where / f"reports/meta_{comp}/metrics.json").read_text())
        assert metrics["n_evaluated"] == 8 and metrics["strategy"] == {"loss": "cma"}.get(comp, "aging")
        t = metrics["test"]
        assert t["found"]["n"] == t["baseline"]["n"] == 2 and 0 < t["found"]["mean"] <= 1
        if comp != "loss":  # `evonas run` prints the summary; a DVC stage its own flow's log
            assert metrics["headline"] in said and f"8 {comp} candidates evaluated" in said
        table = pd.read_csv(where / f"artifacts/meta_{comp}/select/pareto.csv")
        assert table.selected.sum() == 1 and len(table) == 2
        assert (where / f"reports/meta_{comp}/report.md").read_text().startswith(f"# {comp} search")
        found[comp] = path

    # an architecture search (NAS-Bench-201 cells trained stand-alone) with every component found
    sets = ["data.kind=digits", "data.image_size=null", "space.kind=nb201", "evaluation.kind=train",
            "space.nb201_channels=8", "space.nb201_cells=1", "evaluation.train_epochs=2", "search.strategy=aging",
            "search.population=4", "search.generations=1", "selection.finetune_epochs=1", "selection.n_spread=1",
            "evaluation.latency_repeats=3", f"space.activation={found['activation']}",
            f"evaluation.loss={found['loss']}", f"evaluation.augmentation={found['augmentation']}"]
    evonas(["run", "--params", str(ROOT / "params.yaml"), *[a for s in sets for a in ("--set", s)]], tmp_path,
           runs_api)
    assert not (tmp_path / "artifacts/supernet").exists()
    front = pd.read_csv(tmp_path / "artifacts/select/pareto.csv")
    assert front.selected.any() and (front.params > 0).all() and (front.flops > 0).all()
    for cid in front[front.selected].candidate_id:
        card = json.loads((tmp_path / f"artifacts/select/models/{cid}.json").read_text())
        assert card["evaluation"] == "train" and card["architecture"].startswith("|")
        assert card["onnx_max_abs_diff"] < 1e-4 and (tmp_path / f"artifacts/select/models/{cid}.pt2").is_file()
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert set(metrics["stage_seconds"]) == {"prepare", "search", "select"}

    # what the search's workers received: the components' values, not paths
    from nas.backends import backend
    from nas.config import load_config
    from nas.meta.components import recipe_from_json

    cfg = load_config(ROOT / "params.yaml", sets)
    ev = backend(cfg).evaluator(cfg)
    r = recipe_from_json(ev.recipe_json)
    assert r.loss == json.loads(found["loss"].read_text())["value"]
    assert r.augment == json.loads(found["augmentation"].read_text())["value"]
    assert not ev.space.activation.endswith(".json")
    assert resolve("activation", ev.space.activation) == resolve("activation", str(found["activation"]))


"""A NAS-Bench-101-style cell search end to end through `evonas run` on the default data (issue
20): aging evolution with SEP crossover, every candidate trained stand-alone on Dask workers,
the front selected, exported and reported like any other search."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nas.genome import Genome
from nas.spaces.dag_cell import DAGCellSpace
from tests.conftest import ROOT
from tests.test_meta_e2e import evonas

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_dag_cell_search_runs_end_to_end_on_the_default_data(tmp_path, runs_api):
    """The committed example, shrunk: aging evolution with SEP crossover on the default data."""
    sets = ["space.dag_cell.channels=4", "space.dag_cell.stacks=2", "evaluation.train_epochs=1",
            "search.population=4", "search.generations=1", "search.aging_population=4", "search.aging_tournament=2",
            "selection.finetune_epochs=1", "selection.n_spread=1", "evaluation.latency_repeats=3"]
    proc = evonas(["run", "--params", str(ROOT / "examples/dag_cell.yaml"), *[a for s in sets for a in ("--set", s)]],
                  tmp_path, runs_api)
    assert "search (aging" in proc.stderr
    assert not (tmp_path / "artifacts/supernet").exists()
    prepared = json.loads((tmp_path / "data/dag_cell/meta.json").read_text())
    assert prepared["kind"] == "omniglot_pooled"
    space = DAGCellSpace()
    front = pd.read_csv(tmp_path / "artifacts/dag_cell/select/pareto.csv")
    assert front.selected.any() and (front.params > 0).all()
    for genome in front.genome:
        space.validate(Genome(tuple(json.loads(genome)), "dag_cell"))  # canonical, valid cells
    for cid in front[front.selected].candidate_id:
        card = json.loads((tmp_path / f"artifacts/dag_cell/select/models/{cid}.json").read_text())
        assert card["evaluation"] == "train" and "out(" in card["architecture"]
        assert card["onnx_max_abs_diff"] < 1e-4
    metrics = json.loads((tmp_path / "reports/dag_cell/metrics.json").read_text())
    assert set(metrics["stage_seconds"]) == {"prepare", "search", "select"}
    assert metrics["n_evaluated"] == 8 and metrics["strategy"] == "aging"

"""Stand-alone training of NAS-Bench-201 cells on a real dataset, through the real pipeline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nas.config import SpaceConfig
from nas.evaluators.standalone import StandaloneEvaluator, build_model
from nas.spaces.nb201 import NB201Space
from tests.conftest import ROOT


def test_build_model_for_each_space():
    g = NB201Space().largest()
    net = build_model(SpaceConfig(kind="nb201", nb201_channels=8, nb201_cells=1), g, 1, 10)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    from nas.spaces.elastic import ElasticSpace

    e = ElasticSpace(SpaceConfig()).smallest()
    assert build_model(SpaceConfig(), e, 1, 10)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_standalone_training_is_seeded(trained):
    ev = StandaloneEvaluator(SpaceConfig(kind="nb201", nb201_channels=4, nb201_cells=1), trained.data.out_dir,
                             epochs=1, latency_repeats=2, latency_warmup=0)
    g = NB201Space().sample(np.random.default_rng(0))
    a, b = ev.metrics(g, 5), ev.metrics(g, 5)
    assert a["val_accuracy"] == b["val_accuracy"] and a["params"] == b["params"]
    assert 0.0 <= a["val_accuracy"] <= 1.0


@pytest.mark.integration
@pytest.mark.slow
def test_evonas_run_trains_nb201_cells_on_digits(tmp_path, runs_api):
    sets = ["data.kind=digits", "data.image_size=null", "space.kind=nb201", "evaluation.kind=train", "space.nb201_channels=8", "space.nb201_cells=1",
            "evaluation.train_epochs=2", "search.strategy=aging", "search.population=4", "search.generations=1",
            "selection.finetune_epochs=1", "selection.n_spread=1", "evaluation.latency_repeats=3"]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / ".prefect"), "PREFECT_API_URL": runs_api}
    proc = subprocess.run([str(Path(sys.executable).parent / "evonas"), "run", "--params", str(ROOT / "params.yaml")]
                          + [a for s in sets for a in ("--set", s)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "artifacts/supernet").exists()
    front = pd.read_csv(tmp_path / "artifacts/select/pareto.csv")
    assert front.selected.any() and (front.params > 0).all() and (front.flops > 0).all()
    for cid in front[front.selected].candidate_id:
        card = json.loads((tmp_path / f"artifacts/select/models/{cid}.json").read_text())
        assert card["evaluation"] == "train" and card["architecture"].startswith("|")
        assert card["onnx_max_abs_diff"] < 1e-4 and (tmp_path / f"artifacts/select/models/{cid}.pt2").is_file()
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert set(metrics["stage_seconds"]) == {"prepare", "search", "select"}

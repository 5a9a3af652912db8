"""Stand-alone training of NAS-Bench-201 cells on a real dataset, through the real pipeline."""


import numpy as np
import torch

from nas.config import SpaceConfig
from nas.evaluators.standalone import StandaloneEvaluator, build_model
from nas.spaces.nb201 import NB201Space


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

"""Stand-alone evaluation: build the candidate from scratch, train it, score it on validation.

Works for every space with a torch builder (the elastic CNN and NAS-Bench-201 cells), with
no supernet. Training is seeded by the candidate's own seed, so a result does not depend on
which worker ran it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nas.config import SpaceConfig
from nas.data import load_prepared
from nas.genome import Genome
from nas.objectives import cost_metrics
from nas.training import accuracy, resolve_device, train


def build_model(space_cfg: SpaceConfig, genome: Genome, in_channels: int, num_classes: int,
                input_shape: tuple[int, ...] | None = None, init: str = "default", seed: int = 0) -> torch.nn.Module:
    """A freshly initialised network for ``genome`` in the configured space. ``input_shape``
    (channels, height, width) is needed by spaces whose layers depend on it (CoDeepNEAT);
    ``init`` is ``evaluation.init`` (``autoinit`` re-initialises the weights analytically)."""
    shape = tuple(input_shape) if input_shape is not None else (in_channels, 8, 8)
    if space_cfg.kind == "nb201":
        from nas.spaces.nb201_build import build_nb201

        net = build_nb201(genome, in_channels, num_classes, space_cfg.nb201_channels, space_cfg.nb201_cells)
    elif space_cfg.kind == "codeepneat":
        from nas.spaces.codeepneat import CoDeepNEATSpace
        from nas.spaces.codeepneat_build import build_codeepneat

        net = build_codeepneat(CoDeepNEATSpace(space_cfg.codeepneat), genome, in_channels, num_classes, shape)
    else:
        from nas.spaces.elastic import ElasticSpace
        from nas.spaces.elastic_build import build_subnet

        net = build_subnet(ElasticSpace(space_cfg), genome, in_channels, num_classes)
    if init != "default":
        from nas.autoinit import init_model

        init_model(net, init, shape, rng_seed=seed)
    return net


@dataclass(frozen=True)
class StandaloneEvaluator:
    space: SpaceConfig
    data_dir: str
    base_seed: int = 0
    epochs: int = 5
    lr: float = 0.05
    batch_size: int = 64
    latency_repeats: int = 30
    latency_warmup: int = 5
    device: str = "auto"
    threads: int = 1
    init: str = "default"

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        torch.set_num_threads(self.threads)
        torch.manual_seed(seed)
        data = load_prepared(self.data_dir)
        device = resolve_device(self.device)
        net = build_model(self.space, genome, data.input_shape[0], data.num_classes, data.input_shape, self.init, seed)
        train(net, data.x_train, data.y_train, self.epochs, self.lr, self.batch_size, np.random.default_rng(seed),
              device)
        val = accuracy(net, data.x_val, data.y_val, device=device)
        net = net.cpu()
        return {"val_accuracy": float(val),
                **cost_metrics(net, data.input_shape, self.latency_repeats, self.latency_warmup)}

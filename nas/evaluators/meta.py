"""Meta-learning evaluation: the fixed network (:mod:`nas.meta.network`) trained with a candidate
activation, loss or augmentation policy, scored by validation accuracy.

A degenerate activation (constant, non-finite, no gradient) or a malformed component fails at
once, before any training; a loss whose training diverges fails like any diverged candidate.
Training is seeded by the candidate's seed and torch's global generator is restored afterwards,
so results do not depend on the worker or on what it ran before."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from nas.genome import Genome


@functools.lru_cache(maxsize=2)
def _data(data_dir: str):
    from nas.data import load_prepared

    return load_prepared(data_dir)


@dataclass(frozen=True)
class MetaEvaluator:
    component: str  # activation | loss | augmentation
    settings_json: str  # evaluation.meta, as canonical JSON
    base_activation_json: str  # the fixed network's activation tree in loss and augmentation searches ("null": ReLU)
    data_dir: str
    base_seed: int = 0
    device: str = "auto"
    threads: int = 1

    @property
    def settings(self) -> SimpleNamespace:
        return SimpleNamespace(**json.loads(self.settings_json))

    def prepare(self) -> None:
        _data(self.data_dir)

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        from nas.meta.components import check_value
        from nas.meta.network import train_fixed
        from nas.training import accuracy, resolve_device, torch_threads

        if genome.space != self.component:
            raise ValueError(f"a {genome.space} genome in a {self.component} search")
        value = check_value(self.component, genome.payload())
        data = _data(self.data_dir)
        device = resolve_device(self.device)
        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            net = train_fixed(self.component, value, data, seed, self.settings,
                              json.loads(self.base_activation_json), device)
            return {"val_accuracy": float(accuracy(net, data.x_val, data.y_val, device=device))}

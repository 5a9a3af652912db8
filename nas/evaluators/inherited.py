"""Supernet-inherited evaluation: extract the subnet, optionally fine-tune it briefly
(``evaluation.inherited_finetune_epochs``), recalibrate BatchNorm, score on validation.

Its parameter count and FLOPs are exact and its batch-1 CPU latency comes from the per-layer
cost table measured with the supernet (:mod:`nas.costs`). The supernet and the prepared data
are loaded once per process (each Dask worker keeps its own copy).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.data import Prepared, load_prepared
from nas.genome import Genome
from nas.spaces.elastic_build import extract_subnet
from nas.supernet import SupernetBundle, load_supernet
from nas.training import accuracy_and_soft, recalibrate_bn, resolve_device, train


@functools.lru_cache(maxsize=4)
def _load(supernet_dir: str, data_dir: str, stamp: float) -> tuple[SupernetBundle, Prepared]:
    return load_supernet(supernet_dir), load_prepared(data_dir)


def cached_resources(supernet_dir: str, data_dir: str) -> tuple[SupernetBundle, Prepared]:
    stamp = (Path(supernet_dir) / "supernet.pt").stat().st_mtime
    return _load(str(supernet_dir), str(data_dir), stamp)


@dataclass(frozen=True)
class InheritedEvaluator:
    supernet_dir: str
    data_dir: str
    base_seed: int = 0
    bn_batches: int = 4
    batch_size: int = 128
    device: str = "auto"
    threads: int = 1
    finetune_epochs: int = 0
    finetune_lr: float = 0.01
    finetune_batch_size: int = 64

    def prepare(self) -> None:
        """Load (and cache) the supernet and data: shared by every candidate, not part of one's time."""
        cached_resources(self.supernet_dir, self.data_dir)

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        from nas.training import torch_threads

        with torch_threads(self.threads):  # restored afterwards: nothing carries over to the next candidate
            bundle, data = cached_resources(self.supernet_dir, self.data_dir)
            device = resolve_device(self.device)
            net = extract_subnet(bundle.net, genome).to(device)
            if self.finetune_epochs > 0:  # a short adaptation of the inherited weights (a copy: the supernet is untouched)
                train(net, data.x_train, data.y_train, self.finetune_epochs, self.finetune_lr, self.finetune_batch_size,
                      np.random.default_rng([seed, 1]), device)
            recalibrate_bn(net, data.x_train, self.bn_batches, self.batch_size, np.random.default_rng(seed), device)
            val, soft = accuracy_and_soft(net, data.x_val, data.y_val, device=device)
            return {"val_accuracy": float(val), "val_soft_accuracy": float(soft), **bundle.costs(genome)}

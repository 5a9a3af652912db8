"""Weight-agnostic evaluation: a topology scored at every shared weight in one batched pass.

``metrics`` returns ``mean_score`` and ``max_score`` (performance over the shared weights:
training-split accuracy or mean log-likelihood for classification, mean return for control),
``min_score``, ``connections`` and ``hidden_nodes``; for classification also ``ensemble_score``
(the same measure of the weights' ensemble, their softmax probabilities averaged). Nothing is
trained and nothing draws from torch's generator: rollout seeds come from the candidate's seed,
so two candidates may share a worker process. The task (data, environment) is built once per
worker process.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from nas.genome import Genome


@functools.lru_cache(maxsize=4)
def _task(task_json: str, data_dir: str):
    from types import SimpleNamespace

    from nas.wann.tasks import make_task

    return make_task(SimpleNamespace(**json.loads(task_json)), data_dir)


@dataclass(frozen=True)
class WannEvaluator:
    task_json: str  # evaluation.wann, as canonical JSON (hashable, picklable)
    data_dir: str
    base_seed: int = 0

    @property
    def task(self):
        return _task(self.task_json, self.data_dir)

    @property
    def weights(self) -> np.ndarray:
        return np.array(json.loads(self.task_json)["weights"], dtype=np.float64)

    def prepare(self) -> None:
        self.task.n_in  # noqa: B018 - loads the data or starts the environment once

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        from nas.wann.network import compile_plan

        spec = json.loads(genome.spec)
        task = self.task
        if (spec["inputs"], spec["outputs"]) != (task.n_in, task.n_out):
            raise ValueError(f"the genome has {spec['inputs']} inputs and {spec['outputs']} outputs; the task has "
                             f"{task.n_in} and {task.n_out}")
        perf, ensemble = task.scores(compile_plan(spec), self.weights, seed)
        perf = np.asarray(perf, dtype=float)
        out = {"mean_score": float(perf.mean()), "max_score": float(perf.max()), "min_score": float(perf.min()),
               "connections": float(len(spec["conns"])), "hidden_nodes": float(len(spec["hidden"]))}
        if ensemble is not None:
            out["ensemble_score"] = float(ensemble)
        return out

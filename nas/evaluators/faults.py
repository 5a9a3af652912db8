"""Fault injection: make a chosen share of candidates raise, return NaN, or hang.

For rehearsing how a deployment behaves when evaluations go wrong (``evaluation.faults`` in
params; off by default). Which candidate gets which fault is decided by its per-candidate
seed, so the same candidates fail on every run and on every worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.evaluators.base import Evaluator, sleep
from nas.genome import Genome


class InjectedFault(RuntimeError):
    """The error raised by a candidate chosen to fail."""


def fault_of(seed: int, error_rate: float, nan_rate: float, hang_rate: float) -> str | None:
    u = float(np.random.default_rng([seed, 0xFA17]).random())
    if u < error_rate:
        return "error"
    if u < error_rate + nan_rate:
        return "nan"
    if u < error_rate + nan_rate + hang_rate:
        return "hang"
    return None


@dataclass(frozen=True)
class FaultInjectingEvaluator:
    inner: Evaluator
    error_rate: float = 0.0
    nan_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 60.0

    @property
    def base_seed(self) -> int:
        return self.inner.base_seed

    def __getattr__(self, name):  # table(), duration() ... of the wrapped evaluator
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        fault = fault_of(seed, self.error_rate, self.nan_rate, self.hang_rate)
        if fault == "error":
            raise InjectedFault(f"injected fault: candidate {genome.key()} raises (evaluation.faults.error_rate)")
        if fault == "hang":
            sleep(self.hang_seconds)  # returns early only through evaluation.timeout_s
        out = self.inner.metrics(genome, seed)
        if fault == "nan":
            out = {**out, "val_accuracy": float("nan")}
        return out

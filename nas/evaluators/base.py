"""The Evaluator contract: turn a genome into an :class:`EvaluationResult`.

An evaluator never chooses what to evaluate next. It must be picklable (it is shipped to
Dask workers) and deterministic given the genome and its per-candidate seed.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from typing import Protocol, runtime_checkable

from nas.genome import EvaluationResult, Genome, candidate_seed


@runtime_checkable
class Evaluator(Protocol):
    base_seed: int

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        """Every metric of one candidate (objectives are chosen from these)."""


def worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def evaluate(evaluator: Evaluator, genome: Genome) -> EvaluationResult:
    """Run one evaluation, timing it and turning exceptions into a ``failed`` result."""
    seed = candidate_seed(evaluator.base_seed, genome)
    start = time.time()
    t0 = time.perf_counter()
    try:
        metrics = evaluator.metrics(genome, seed)
        status, error = "ok", None
        bad = [k for k, v in metrics.items() if v != v]  # NaN
        if bad:
            status, error = "failed", f"non-finite metric(s) {bad}"
    except Exception as exc:  # recorded, never silently dropped
        metrics, status = {}, "failed"
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    return EvaluationResult(genome=genome, metrics=metrics, status=status, error=error, seed=seed,
                            worker=worker_name(), eval_seconds=time.perf_counter() - t0,
                            started_at=start, finished_at=time.time())


class LocalPool:
    """Evaluate in this process, one candidate after another (same interface as ``DaskPool``).
    For debugging and unit tests; pipeline stages always evaluate on Dask."""

    n_workers = 1

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def iter_evaluate(self, evaluator: Evaluator, genomes: list[Genome], on_result=None):
        for g in genomes:
            r = evaluate(evaluator, g)
            if on_result:
                on_result(r)
            yield r

    def evaluate(self, evaluator: Evaluator, genomes: list[Genome], on_result=None) -> list[EvaluationResult]:
        return list(self.iter_evaluate(evaluator, genomes, on_result))

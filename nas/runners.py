"""The search loop: ask a generation, evaluate it on Dask, tell, snapshot. Knows no search space.

Each generation's evaluated candidates are written to ``populations/gen_NNN.parquet`` (one
row per candidate: genome, every metric, status, error, seed, evaluation seconds, worker,
generation), so selection, plots and later analysis read one layout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from nas.genome import EvaluationResult, Genome
from nas.io import atomic_write_with
from nas.objectives import feasible, to_minimise
from nas.pareto import hypervolume

METRIC_COLUMNS = ["val_accuracy", "params", "flops", "latency_ms"]


def results_frame(results: list[EvaluationResult], generation: int | None = None) -> pd.DataFrame:
    """One row per result: the standard metric columns, then any other metric the evaluator
    produced (for example a table's report and cost columns)."""
    extra = sorted({k for r in results for k in r.metrics} - set(METRIC_COLUMNS))
    rows = []
    for r in results:
        row = {"candidate_id": r.candidate_id, "genome": r.genome.to_json(), "space": r.genome.space}
        for m in METRIC_COLUMNS + extra:
            row[m] = float(r.metrics.get(m, np.nan))
        row.update(status=r.status, error=r.error or "", seed=r.seed, eval_seconds=r.eval_seconds,
                   worker=r.worker, submitted_at=float(r.extra.get("submitted_at", np.nan)),
                   started_at=r.started_at, finished_at=r.finished_at)
        if generation is not None:
            row["generation"] = generation
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["candidate_id", "genome", "space", *METRIC_COLUMNS, "status"])


def read_populations(pop_dir: str | Path) -> pd.DataFrame:
    files = sorted(Path(pop_dir).glob("gen_*.parquet"))
    if not files:
        raise FileNotFoundError(f"{pop_dir}: no gen_*.parquet population files (run `evonas stage search` first)")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@dataclass
class HypervolumeTracker:
    """Hypervolume of the feasible evaluated set after every result, in fixed normalised bounds."""

    objectives: list[str]
    constraints: dict[str, float]
    ideal: np.ndarray
    nadir: np.ndarray
    points: list[np.ndarray] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    def add(self, r: EvaluationResult) -> float:
        if r.ok and feasible(r.metrics, self.constraints):
            self.points.append(to_minimise(r.metrics, self.objectives))
        hv = hypervolume(np.array(self.points), self.ideal, self.nadir) if self.points else 0.0
        self.history.append({"evaluations": len(self.history) + 1, "hypervolume": hv})
        return hv


class _SnapshotRunner:
    """What both runners share: a fresh ``populations/`` folder, per-result bookkeeping, and
    closing a generation (tell the strategy, snapshot it, log it)."""

    def _fresh_pop_dir(self) -> None:
        self.pop_dir.mkdir(parents=True, exist_ok=True)
        for old in self.pop_dir.glob("gen_*.parquet"):
            old.unlink()  # a fresh run never mixes with an earlier run's snapshots

    def _record(self, r: EvaluationResult) -> None:
        if self.tracker:
            self.tracker.add(r)
        if self.on_result:
            self.on_result(r)

    def _close_generation(self, gen: int, batch: list[EvaluationResult], ask_s: float, wall: float) -> None:
        self.strategy.tell(batch)
        df = results_frame(batch, gen)
        atomic_write_with(self.pop_dir / f"gen_{gen:03d}.parquet", lambda tmp: df.to_parquet(tmp, index=False))
        self.generation_log.append({
            "generation": gen, "evaluated": len(batch), "failed": sum(not r.ok for r in batch),
            "ask_seconds": ask_s, "evaluate_wall_seconds": wall,
            "evaluate_busy_seconds": sum(r.eval_seconds for r in batch),
            "hypervolume": self.tracker.history[-1]["hypervolume"] if self.tracker and self.tracker.history else None})
        if self.on_generation:
            self.on_generation(gen, batch)


class GenerationalRunner(_SnapshotRunner):
    def __init__(self, strategy, pool, evaluator, population: int, generations: int, out_dir: str | Path,
                 tracker: HypervolumeTracker | None = None,
                 on_result: Callable[[EvaluationResult], None] | None = None,
                 on_generation: Callable[[int, list[EvaluationResult]], None] | None = None):
        self.strategy, self.pool, self.evaluator = strategy, pool, evaluator
        self.population, self.generations = population, generations
        self.pop_dir = Path(out_dir) / "populations"
        self.tracker = tracker
        self.on_result, self.on_generation = on_result, on_generation
        self.results: list[EvaluationResult] = []
        self.generation_log: list[dict] = []

    def run(self) -> list[EvaluationResult]:
        self._fresh_pop_dir()
        for gen in range(self.generations + 1):
            t_ask = time.perf_counter()
            genomes: list[Genome] = self.strategy.ask(self.population)
            ask_s = time.perf_counter() - t_ask
            t0 = time.perf_counter()
            batch = []
            for r in self.pool.iter_evaluate(self.evaluator, genomes):
                batch.append(r)
                self._record(r)
            self._close_generation(gen, batch, ask_s, time.perf_counter() - t0)
            self.results.extend(batch)
        return self.results


class AsyncRunner(_SnapshotRunner):
    """Asynchronous evolution (Liang & Miikkulainen): ``in_flight`` (K) candidates are kept
    running on the Dask workers; whenever ``batch`` (M) of them have returned, the strategy is
    told those results (they join the current generation), a population snapshot is written,
    and M new candidates are submitted. Workers never wait for a generation's slowest member,
    so fast candidates return and breed sooner.

    Uses the pool's Dask client directly (``client.submit`` and ``distributed.as_completed``).
    The budget counts completed evaluations. At the budget, work still in flight is cancelled
    (``drain="cancel"``, reported in ``cancelled``) or awaited and kept (``drain="await"``).
    Every result records when it was submitted, started and finished, on which worker, and
    the generation (update) it joined.
    """

    def __init__(self, strategy, pool, evaluator, budget: int, in_flight: int, batch: int, out_dir: str | Path,
                 tracker: HypervolumeTracker | None = None, drain: str = "cancel",
                 on_result: Callable[[EvaluationResult], None] | None = None,
                 on_generation: Callable[[int, list[EvaluationResult]], None] | None = None):
        if not (0 < batch <= in_flight):
            raise ValueError(f"need 0 < batch <= in_flight, got batch={batch}, in_flight={in_flight}")
        if drain not in ("cancel", "await"):
            raise ValueError(f"drain must be 'cancel' or 'await', got {drain!r}")
        self.strategy, self.pool, self.evaluator = strategy, pool, evaluator
        self.budget, self.in_flight, self.batch, self.drain = budget, in_flight, batch, drain
        self.pop_dir = Path(out_dir) / "populations"
        self.tracker = tracker
        self.on_result, self.on_generation = on_result, on_generation
        self.results: list[EvaluationResult] = []
        self.generation_log: list[dict] = []
        self.cancelled: list[Genome] = []
        self.submitted = 0
        self.max_in_flight = 0

    def _submit(self, n: int, queue, meta: dict) -> float:
        from nas.evaluators.base import evaluate

        t = time.perf_counter()
        genomes = self.strategy.ask(n) if n > 0 else []
        ask_s = time.perf_counter() - t
        for g in genomes:
            submitted_at = time.time()
            fut = self.pool.client.submit(evaluate, self.evaluator, g, pure=False,
                                          key=f"evaluate-{g.key()}-{self.submitted}")
            meta[fut.key] = (g, submitted_at, fut)
            self.submitted += 1
            queue.add(fut)
        self.max_in_flight = max(self.max_in_flight, queue.count())
        return ask_s

    def run(self) -> list[EvaluationResult]:
        from distributed import as_completed

        if getattr(self.pool, "client", None) is None:
            raise TypeError("AsyncRunner needs a Dask pool (DaskPool) entered with `with`")
        self._fresh_pop_dir()
        meta: dict = {}
        queue = as_completed()
        ask_s = self._submit(min(self.in_flight, self.budget), queue, meta)
        gen, pending, t_gen = 0, [], time.perf_counter()
        for fut in queue:
            if len(self.results) >= self.budget:
                break
            _, submitted_at, _ = meta.pop(fut.key)
            r = fut.result()
            r.extra.update(submitted_at=submitted_at, generation=gen)
            self.results.append(r)
            pending.append(r)
            self._record(r)
            done = len(self.results) >= self.budget
            if len(pending) >= self.batch or done or (queue.is_empty() and pending):
                self._close_generation(gen, pending, ask_s, time.perf_counter() - t_gen)
                gen, pending, t_gen = gen + 1, [], time.perf_counter()
                if done:
                    break
                # top the queue back up to K (what is still running at the budget is drained)
                ask_s = self._submit(self.in_flight - queue.count(), queue, meta)
                if queue.is_empty():
                    break  # the strategy has nothing new to propose
        leftover = [f for _, _, f in meta.values()]
        if self.drain == "await" and leftover:
            late = []
            for fut in as_completed(leftover):
                _, submitted_at, _ = meta.pop(fut.key)
                r = fut.result()
                r.extra.update(submitted_at=submitted_at, generation=gen, late=True)
                late.append(r)
            if late:
                self.results.extend(late)
                self._close_generation(gen, late, 0.0, 0.0)
        else:
            for fut in leftover:
                fut.cancel()
            self.cancelled = [g for g, _, _ in meta.values()]
        return self.results

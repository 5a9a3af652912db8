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

from nas.checkpoint import Checkpointer, RecordingStrategy, replay
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
    """Hypervolume of the feasible evaluated set after every result, in fixed normalised bounds.

    Only the non-dominated points are kept (the hypervolume of a set is that of its
    non-dominated subset), and it is recomputed only when a result enters that front: a
    dominated result costs one comparison with the front instead of a hypervolume over every
    result so far, a cost that grew with the run."""

    objectives: list[str]
    constraints: dict[str, float]
    ideal: np.ndarray
    nadir: np.ndarray
    front: np.ndarray | None = None
    history: list[dict] = field(default_factory=list)

    def add(self, r: EvaluationResult) -> float:
        hv = self.history[-1]["hypervolume"] if self.history else 0.0
        if r.ok and feasible(r.metrics, self.constraints):
            f = np.asarray(to_minimise(r.metrics, self.objectives), dtype=float)
            front = self.front if self.front is not None else np.empty((0, len(f)))
            if not (front <= f).all(axis=1).any():  # not weakly dominated: it changes the front
                # the points the new one dominates leave
                self.front = np.vstack([front[~(f <= front).all(axis=1)], f])
                hv = hypervolume(self.front, self.ideal, self.nadir)
        self.history.append({"evaluations": len(self.history) + 1, "hypervolume": hv})
        return hv


class _SnapshotRunner:
    """What both runners share: the ``populations/`` folder, per-result bookkeeping, closing a
    generation (tell the strategy, snapshot it, checkpoint it, log it), and resuming from a
    checkpoint (see :mod:`nas.checkpoint`)."""

    checkpointer: Checkpointer | None = None
    resume: bool = False

    def _init_common(self, strategy, pool, evaluator, out_dir, tracker, on_result, on_generation,
                      checkpointer, resume) -> None:
        self.strategy = RecordingStrategy(strategy)
        self.pool, self.evaluator = pool, evaluator
        self.pop_dir = Path(out_dir) / "populations" if out_dir is not None else None  # None: no snapshots
        self.tracker = tracker
        self.on_result, self.on_generation = on_result, on_generation
        self.checkpointer, self.resume = checkpointer, resume
        self.results: list[EvaluationResult] = []
        self.generation_log: list[dict] = []
        self.resumed_from: int | None = None  # generation the run resumed at
        self.reused = 0  # results taken from the journal instead of evaluated again
        # results evaluated by this process (not restored from a checkpoint or taken from the journal):
        # what this run's worker time was spent on
        self.evaluated_now: list[EvaluationResult] = []
        self._journaled: dict[str, EvaluationResult] = {}

    def _begin(self) -> int:
        """Start afresh, or restore the checkpoint; returns the next generation's index."""
        if self.pop_dir is None:
            if self.resume or self.checkpointer:
                raise ValueError("a runner without out_dir keeps no snapshots, so it cannot checkpoint or resume")
            return 0
        self.pop_dir.mkdir(parents=True, exist_ok=True)
        if not (self.resume and self.checkpointer and self.checkpointer.exists()):
            for old in self.pop_dir.glob("gen_*.parquet"):
                old.unlink()  # a fresh run never mixes with an earlier run's snapshots
            if self.checkpointer:
                self.checkpointer.start_fresh()
            return 0
        doc = self.checkpointer.load()
        self.strategy = replay(self.strategy.inner, doc["events"], doc["results"], doc.get("rng_state"))
        told = [k for ev in doc["events"] if ev[0] == "tell" for k in ev[1]]
        self.results = [doc["results"][k] for k in told]
        for r in self.results:  # the hypervolume history and the progress bar pick up where they were
            self._record(r, journal=False)
        self.generation_log = list(doc["generation_log"])
        self._restore_state(doc)
        nxt = int(doc["next_generation"])
        for old in self.pop_dir.glob("gen_*.parquet"):
            if int(old.stem.split("_")[1]) >= nxt:
                old.unlink()  # written after the checkpoint: will be written again
        tells = [ev[1] for ev in doc["events"] if ev[0] == "tell"]
        for gen, keys in enumerate(tells[:nxt]):  # snapshots deleted since (`dvc repro` clears outputs)
            path = self.pop_dir / f"gen_{gen:03d}.parquet"
            if not path.exists():
                df = results_frame([doc["results"][k] for k in keys], gen)
                atomic_write_with(path, lambda tmp, df=df: df.to_parquet(tmp, index=False))
        self._journaled = {k: r for k, r in self.checkpointer.journaled().items() if k not in doc["results"]}
        self.resumed_from = nxt
        return nxt

    def _restore_state(self, doc: dict) -> None:
        pass

    def _state(self) -> dict:
        return {}

    def _record(self, r: EvaluationResult, journal: bool = True) -> None:
        """Account for a result; ``journal=False``: one restored or taken from the journal, evaluated
        by an earlier process."""
        if journal:
            self.evaluated_now.append(r)
            if self.checkpointer:
                self.checkpointer.journal(r)
        if self.tracker:
            self.tracker.add(r)
        if self.on_result:
            self.on_result(r)

    def _close_generation(self, gen: int, batch: list[EvaluationResult], ask_s: float, wall: float,
                          save: bool = True) -> None:
        self.strategy.tell(batch)
        if self.pop_dir is not None:
            df = results_frame(batch, gen)
            atomic_write_with(self.pop_dir / f"gen_{gen:03d}.parquet", lambda tmp: df.to_parquet(tmp, index=False))
        self.generation_log.append({
            "generation": gen, "evaluated": len(batch), "failed": sum(not r.ok for r in batch),
            "ask_seconds": ask_s, "evaluate_wall_seconds": wall,
            "evaluate_busy_seconds": sum(r.eval_seconds for r in batch),
            "hypervolume": self.tracker.history[-1]["hypervolume"] if self.tracker and self.tracker.history else None})
        if self.checkpointer and save:
            self.checkpointer.save(self.strategy, {"next_generation": gen + 1, "generation_log": self.generation_log,
                                                   **self._state()})
        if self.on_generation:
            self.on_generation(gen, batch)

    def _finish(self) -> None:
        if self.checkpointer:
            self.checkpointer.close()


class GenerationalRunner(_SnapshotRunner):
    """Ask a generation, evaluate it on the pool, tell the strategy the results in the order it
    proposed them (so the run does not depend on which worker finished first), snapshot and
    checkpoint. With a table evaluator the whole run is deterministic given the seed, also
    across a crash and ``resume``."""

    def __init__(self, strategy, pool, evaluator, population: int, generations: int, out_dir: str | Path | None,
                 tracker: HypervolumeTracker | None = None,
                 on_result: Callable[[EvaluationResult], None] | None = None,
                 on_generation: Callable[[int, list[EvaluationResult]], None] | None = None,
                 checkpointer: Checkpointer | None = None, resume: bool = False, checkpoint_every: int = 1):
        self._init_common(strategy, pool, evaluator, out_dir, tracker, on_result, on_generation, checkpointer, resume)
        self.population, self.generations = population, generations
        self.checkpoint_every = checkpoint_every

    def run(self) -> list[EvaluationResult]:
        try:
            start = self._begin()
            for gen in range(start, self.generations + 1):
                t_ask = time.perf_counter()
                genomes: list[Genome] = self.strategy.ask(self.population)
                ask_s = time.perf_counter() - t_ask
                t0 = time.perf_counter()
                batch = []
                for g in genomes:  # finished before a crash: not evaluated again
                    r = self._journaled.pop(g.key(), None)
                    if r is not None:
                        batch.append(r)
                        self.reused += 1
                        self._record(r, journal=False)
                have = {r.candidate_id for r in batch}
                todo = [g for g in genomes if g.key() not in have]
                # the last generation: workers may go as they fall idle (pool.release_idle)
                for r in self.pool.iter_evaluate(self.evaluator, todo, last=gen == self.generations):
                    batch.append(r)
                    self._record(r)
                order = {g.key(): i for i, g in enumerate(genomes)}
                batch.sort(key=lambda r: order[r.candidate_id])
                save = (gen + 1) % self.checkpoint_every == 0 or gen == self.generations
                self._close_generation(gen, batch, ask_s, time.perf_counter() - t0, save)
                self.results.extend(batch)
        finally:
            self._finish()
        return self.results


class AsyncRunner(_SnapshotRunner):
    """Asynchronous evolution (Liang & Miikkulainen): ``in_flight`` (K) candidates are kept
    running on the Dask workers; whenever ``batch`` (M) of them have returned, the strategy is
    told those results (they join the current generation), a population snapshot and a
    checkpoint are written, and M new candidates are submitted. Workers never wait for a
    generation's slowest member, so fast candidates return and breed sooner.

    Uses only the pool contract (``pool.queue()``: submit, results as they complete, cancel),
    so it runs on the local pool and on Dask alike. The budget counts completed evaluations. At the budget, work still in flight is cancelled
    (``drain="cancel"``, reported in ``cancelled``) or awaited and kept (``drain="await"``, so more
    than the budget is evaluated). With ``drain="finish"`` no more than the budget is ever submitted:
    the last candidates run to the end, and nothing is cancelled (slow candidates, which are the
    likeliest to be in flight at any moment, are not the ones lost). While the last candidates of
    "finish" or "await" run, the pool may let its workers go as they fall idle (``pool.release_idle()``:
    Dask retires them, the simulated pool stops counting them as held).
    Every result records when it was submitted, started and finished, on which worker, and
    the generation (update) it joined. On resume, the candidates that were in flight are
    taken from the journal when they had finished, and submitted again otherwise; a candidate
    the replayed strategy proposes anew whose result is in the journal is taken from there too,
    never evaluated twice.
    """

    def __init__(self, strategy, pool, evaluator, budget: int, in_flight: int, batch: int, out_dir: str | Path | None,
                 tracker: HypervolumeTracker | None = None, drain: str = "cancel",
                 on_result: Callable[[EvaluationResult], None] | None = None,
                 on_generation: Callable[[int, list[EvaluationResult]], None] | None = None,
                 checkpointer: Checkpointer | None = None, resume: bool = False):
        if not (0 < batch <= in_flight):
            raise ValueError(f"need 0 < batch <= in_flight, got batch={batch}, in_flight={in_flight}")
        if drain not in ("cancel", "await", "finish"):
            raise ValueError(f"drain must be 'cancel', 'await' or 'finish', got {drain!r}")
        self._init_common(strategy, pool, evaluator, out_dir, tracker, on_result, on_generation, checkpointer, resume)
        self.budget, self.in_flight, self.batch, self.drain = budget, in_flight, batch, drain
        self.cancelled: list[Genome] = []
        self.submitted = 0
        self.max_in_flight = 0
        # on resume: results from the journal for candidates asked again (a replayed strategy proposes
        # what it proposed before the crash), taken in place of evaluating them again
        self._ready: list[EvaluationResult] = []

    def _state(self) -> dict:
        return {"submitted": self.submitted, "max_in_flight": self.max_in_flight}

    def _restore_state(self, doc: dict) -> None:
        self.submitted = int(doc.get("submitted", 0))
        self.max_in_flight = int(doc.get("max_in_flight", 0))

    def _submit_genomes(self, genomes: list[Genome], queue, meta: dict) -> None:
        for g in genomes:
            if (done := self._journaled.pop(g.key(), None)) is not None:  # finished before a crash
                self._ready.append(done)
                continue
            submitted_at = time.time()
            meta[queue.submit(self.evaluator, g)] = (g, submitted_at)
            self.submitted += 1
        self.max_in_flight = max(self.max_in_flight, queue.count())

    def _outstanding(self, queue) -> int:
        """Candidates asked and not yet returned: in the queue, or ready from the journal."""
        return queue.count() + len(self._ready)

    def _submit(self, n: int, queue, meta: dict) -> float:
        if self.drain == "finish":  # never more in flight than the budget still needs
            n = min(n, self.budget - len(self.results) - self._outstanding(queue))
        t = time.perf_counter()
        genomes = self.strategy.ask(n) if n > 0 else []
        ask_s = time.perf_counter() - t
        self._submit_genomes(genomes, queue, meta)
        if self.drain == "finish" and len(self.results) + self._outstanding(queue) >= self.budget:
            self.pool.release_idle()  # the last candidates are in flight: workers may go as they fall idle
        return ask_s

    def run(self) -> list[EvaluationResult]:
        try:
            return self._run()
        finally:
            self._finish()

    def _run(self) -> list[EvaluationResult]:
        if not callable(getattr(self.pool, "queue", None)):
            raise TypeError(f"AsyncRunner needs a pool with queue() (LocalPool, DaskPool), got {type(self.pool).__name__}")
        gen = self._begin()
        meta: dict = {}
        queue = self.pool.queue()
        pending: list[EvaluationResult] = []
        t_gen = time.perf_counter()
        ask_s = 0.0
        if self.resumed_from is None:
            ask_s = self._submit(min(self.in_flight, self.budget), queue, meta)
        else:  # what was in flight at the crash: finished ones from the journal, the rest again
            left = self.budget - len(self.results)
            for g in self.strategy.outstanding():
                r = self._journaled.pop(g.key(), None)
                if r is not None and len(pending) < left:
                    pending.append(r)
                    self.results.append(r)
                    self.reused += 1
                    self._record(r, journal=False)
                elif r is None and len(self.results) < self.budget:
                    self._submit_genomes([g], queue, meta)
            if len(self.results) < self.budget:
                ask_s = self._submit(self.in_flight - self._outstanding(queue), queue, meta)
            if pending and (len(pending) >= self.batch or len(self.results) >= self.budget
                            or not self._outstanding(queue)):
                self._close_generation(gen, pending, 0.0, 0.0)
                gen, pending = gen + 1, []
        while len(self.results) < self.budget:
            if self._ready:  # asked again after a resume, and finished before the crash: from the journal
                r = self._ready.pop(0)
                self.reused += 1
                self._record(r, journal=False)
            else:
                try:
                    key, r = next(queue)
                except StopIteration:
                    break
                g, submitted_at = meta.pop(key)
                r.extra.update(submitted_at=submitted_at, generation=gen)
                self._record(r)
            self.results.append(r)
            pending.append(r)
            done = len(self.results) >= self.budget
            if len(pending) >= self.batch or done or (not self._outstanding(queue) and pending):
                self._close_generation(gen, pending, ask_s, time.perf_counter() - t_gen)
                gen, pending, t_gen = gen + 1, [], time.perf_counter()
                if done:
                    break
                # top the queue back up to K (what is still running at the budget is drained)
                ask_s = self._submit(self.in_flight - self._outstanding(queue), queue, meta)
                if not self._outstanding(queue):
                    break  # the strategy has nothing new to propose
        if self.drain == "await" and meta:
            self.pool.release_idle()
            late = []
            for key, r in queue:
                g, submitted_at = meta.pop(key)
                r.extra.update(submitted_at=submitted_at, generation=gen, late=True)
                late.append(r)
                self._record(r)
            if late:
                self.results.extend(late)
                self._close_generation(gen, late, 0.0, 0.0)
        else:
            queue.cancel()
            self.cancelled = [g for g, _ in meta.values()]
        return self.results

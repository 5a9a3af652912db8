"""A pool on a simulated clock: many workers, no waiting (syne-tune's simulator backend idea).

``SimulatedPool`` keeps the pool contract of ``LocalPool`` and ``DaskPool`` (``queue()``:
submit, results as they complete, cancel; ``iter_evaluate`` for a generation), so the
unchanged ``GenerationalRunner`` and ``AsyncRunner`` and the unchanged strategies run on it.
It is a discrete-event simulation: ``workers`` simulated workers take submitted candidates
first come, first served; a candidate holds its worker for ``duration(genome)`` simulated
seconds; completions come out in order of simulated finish time (ties in submission order),
and the clock jumps from event to event instead of sleeping. The evaluation itself (a table
lookup) runs for real when the candidate completes, and the result carries its simulated
``sim_start``, ``sim_finish`` and ``sim_worker`` in ``extra``, and its simulated duration as
``eval_seconds`` (the seconds it held its worker, as a real pool reports them).

With ``failure_rate`` > 0 a worker dies during an evaluation with that probability (at a
uniform point of it, decided per candidate and attempt from ``seed``), comes back after
``restart_s`` simulated seconds, and the candidate is submitted again at the head of the
queue, as Dask reschedules the tasks of a lost worker (``retries`` counts them). Nothing is
ever timed with a wall clock: a simulation replays exactly.

``busy_seconds`` (worker time spent on evaluations that completed, failed or were cancelled) and
``clock`` give utilisation: ``busy_seconds / (workers * clock)``. ``wasted_seconds`` is the part of
it that gave no result (cancelled work, failed attempts).

:meth:`SimulatedPool.release_idle` (the pool contract's "nothing more will be submitted", which a
runner says when it drains at its budget and for a generational search's last generation) lets
workers go as they fall idle, as Dask retires the idle workers of a cluster it scales: a worker then
leaves when it finishes and nothing waits for it. ``utilisation_held`` is busy time over the worker
time *held* (what a cluster of rented machines costs), beside ``utilisation`` over all ``workers``
for the whole run; ``utilisation_useful`` counts only the evaluations that completed. The next
:meth:`queue` (new work) brings every worker back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
from collections import deque
from collections.abc import Callable

import numpy as np

from nas.evaluators.base import Evaluator, LocalPool, evaluate
from nas.genome import EvaluationResult, Genome, candidate_seed


def _u(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) from a seed and labels (no shared generator, so the draw of a
    candidate does not depend on what else was simulated)."""
    h = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") / 2 ** 64


class SimulatedQueue:
    """One completion queue on the pool's clock (see the module docstring)."""

    def __init__(self, pool: "SimulatedPool"):
        self.pool = pool
        self._waiting: deque[tuple[str, Evaluator, Genome, int]] = deque()  # (key, evaluator, genome, attempt)
        self._events: list[tuple[float, int, str, Evaluator, Genome, int, float, int, bool]] = []
        self._free = list(range(pool.workers))
        heapq.heapify(self._free)
        self._down: list[tuple[float, int]] = []  # (back at, worker)
        self._n = 0
        self._seq = 0

    # --- contract ----------------------------------------------------------------------
    def submit(self, evaluator: Evaluator, genome: Genome) -> str:
        key = f"evaluate-{genome.key()}-{self._n}"
        self._n += 1
        self._waiting.append((key, evaluator, genome, 0))
        self._dispatch()
        return key

    def count(self) -> int:
        return len(self._waiting) + len(self._events)  # a failed attempt's candidate comes back

    def is_empty(self) -> bool:
        return self.count() == 0

    def __iter__(self):
        return self

    def __next__(self) -> tuple[str, EvaluationResult]:
        p = self.pool
        while True:
            if not self._events:
                if self._waiting and self._down:  # every worker is down: wait for the first back
                    self._restore(self._down[0][0])
                    self._dispatch()
                    continue
                raise StopIteration
            t, _, key, evaluator, genome, attempt, start, worker, failed = heapq.heappop(self._events)
            if t < p.clock:
                raise AssertionError("the simulated clock would run backwards")
            p.clock = t
            p.busy_seconds += t - start
            if failed:  # the worker died: it restarts later, the candidate goes first in line again
                p.retries += 1
                p.wasted_seconds += t - start
                heapq.heappush(self._down, (t + p.restart_s, worker))
                self._waiting.appendleft((key, evaluator, genome, attempt + 1))
                self._restore(t)
                self._dispatch()
                p._let_idle_go(self)
                continue
            heapq.heappush(self._free, worker)
            self._restore(t)
            self._dispatch()
            p._let_idle_go(self)
            r = evaluate(evaluator, genome)
            r.extra.update(sim_start=start, sim_finish=t, sim_worker=worker, sim_attempts=attempt + 1)
            r = dataclasses.replace(r, eval_seconds=t - start)
            p.completed += 1
            return key, r

    def cancel(self) -> list[str]:
        keys = [k for k, *_ in self._waiting] + [e[2] for e in self._events]
        for e in self._events:  # what ran until now still occupied its worker, for nothing
            spent = max(0.0, self.pool.clock - e[6])
            self.pool.busy_seconds += spent
            self.pool.wasted_seconds += spent
        self._waiting.clear()
        self._events.clear()
        self.pool.cancelled += len(keys)
        return keys

    # --- the simulation ------------------------------------------------------------------
    def _restore(self, t: float) -> None:
        while self._down and self._down[0][0] <= t:
            heapq.heappush(self._free, heapq.heappop(self._down)[1])

    def _dispatch(self) -> None:
        p = self.pool
        while self._waiting and self._free:
            key, evaluator, genome, attempt = self._waiting.popleft()
            worker = heapq.heappop(self._free)
            d = float(p.duration(genome))
            if not np.isfinite(d) or d < 0:
                raise ValueError(f"duration of {genome.key()} must be a finite number >= 0, got {d}")
            fail = p.failure_rate > 0 and _u(p.seed, "fail", genome.key(), attempt) < p.failure_rate
            end = p.clock + (d * _u(p.seed, "when", genome.key(), attempt) if fail else d)
            heapq.heappush(self._events, (end, self._seq, key, evaluator, genome, attempt, p.clock, worker, fail))
            self._seq += 1


class SimulatedPool(LocalPool):
    """``workers`` simulated workers on one simulated clock (module docstring); LocalPool's
    ``iter_evaluate`` and ``evaluate`` run on its queue."""

    def __init__(self, workers: int, duration: Callable[[Genome], float], failure_rate: float = 0.0,
                 restart_s: float = 0.0, seed: int = 0):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not 0.0 <= failure_rate < 1.0:
            raise ValueError(f"failure_rate must be in [0, 1), got {failure_rate}")
        if restart_s < 0:
            raise ValueError(f"restart_s must be >= 0, got {restart_s}")
        self.workers, self.n_workers = workers, workers
        self.duration, self.failure_rate, self.restart_s, self.seed = duration, failure_rate, restart_s, seed
        self.clock = 0.0
        self.busy_seconds = 0.0
        self.wasted_seconds = 0.0  # of busy_seconds: cancelled work and failed attempts, which gave no result
        self.completed = self.retries = self.cancelled = 0
        self.releasing = False
        self._gone: dict[int, float] = {}  # released worker -> when it left
        self._away_seconds = 0.0  # worker time not held, of workers since brought back
        self._queue: SimulatedQueue | None = None

    @property
    def utilisation(self) -> float:
        """Busy time over all ``workers`` for the whole clock."""
        return self.busy_seconds / (self.workers * self.clock) if self.clock > 0 else 0.0

    @property
    def held_seconds(self) -> float:
        """Worker time held: ``workers * clock`` less the time released workers were away."""
        away = self._away_seconds + sum(self.clock - t for t in self._gone.values())
        return self.workers * self.clock - away

    @property
    def utilisation_held(self) -> float:
        """Busy time over the worker time held (equal to ``utilisation`` unless workers were released)."""
        held = self.held_seconds
        return self.busy_seconds / held if held > 0 else 0.0

    @property
    def utilisation_useful(self) -> float:
        """Worker time spent on evaluations that completed, over the worker time held."""
        held = self.held_seconds
        return (self.busy_seconds - self.wasted_seconds) / held if held > 0 else 0.0

    def queue(self) -> SimulatedQueue:
        for t in self._gone.values():  # new work: every released worker is back
            self._away_seconds += self.clock - t
        self._gone.clear()
        self.releasing = False
        self._queue = SimulatedQueue(self)
        return self._queue

    def release_idle(self) -> None:
        """Nothing more will be submitted until the next :meth:`queue`: workers idle now, and each
        one as it finishes with nothing waiting, leave (they stop counting in ``held_seconds``)."""
        self.releasing = True
        if self._queue is not None:
            self._let_idle_go(self._queue)

    def _let_idle_go(self, q: SimulatedQueue) -> None:
        if not self.releasing or q is not self._queue:
            return
        while q._free and not q._waiting:
            self._gone[heapq.heappop(q._free)] = self.clock


def lognormal_durations(base: Callable[[Genome], float], sigma: float = 0.0, seed: int = 0,
                        mean: float = 1.0) -> Callable[[Genome], float]:
    """Durations ``base(genome) * noise``: log-normal noise with log-std ``sigma`` and mean 1
    (heavy-tailed for sigma around 1), drawn per candidate from ``seed`` and the genome so a
    candidate always takes as long; ``mean`` rescales so that ``base`` of 1 lasts ``mean``."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")

    def duration(g: Genome) -> float:
        if sigma == 0:
            return mean * float(base(g))
        rng = np.random.default_rng(candidate_seed(seed, g))
        return mean * float(base(g)) * float(np.exp(rng.normal(-sigma * sigma / 2, sigma)))

    return duration

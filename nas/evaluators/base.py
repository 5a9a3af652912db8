"""The Evaluator contract: turn a genome into an :class:`EvaluationResult`.

An evaluator never chooses what to evaluate next. It must be picklable (it is shipped to
Dask workers) and deterministic given the genome and its per-candidate seed.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import traceback
from typing import Protocol, runtime_checkable

from nas.genome import EvaluationResult, Genome, candidate_seed


@runtime_checkable
class Evaluator(Protocol):
    """``metrics`` scores one candidate. An evaluator may also offer ``prepare()``, which loads
    resources every candidate shares (a table, a supernet); a timed evaluation calls it before
    the candidate's clock starts."""

    base_seed: int

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        """Every metric of one candidate (objectives are chosen from these)."""


def worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


class EvaluationTimeout(Exception):
    """Raised inside an evaluation that ran past ``evaluation.timeout_s``."""


_local = threading.local()


def _timeout_message(timeout_s: float | None) -> str:
    """What a timed-out candidate records, whether its loop saw the deadline first or the
    caller stopped waiting first."""
    return f"evaluation exceeded evaluation.timeout_s = {timeout_s:g} s" if timeout_s else \
        "evaluation exceeded evaluation.timeout_s"


def check_deadline() -> None:
    """Long evaluation loops (training batches, simulated waits) call this; it raises
    :class:`EvaluationTimeout` once the candidate's time is up."""
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise EvaluationTimeout(_timeout_message(getattr(_local, "timeout_s", None)))


def sleep(seconds: float) -> None:
    """``time.sleep`` that stops at the candidate's deadline."""
    end = time.monotonic() + seconds
    while True:
        check_deadline()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _metrics(evaluator: Evaluator, genome: Genome, seed: int) -> tuple[dict[str, float], str, str | None]:
    try:
        metrics = evaluator.metrics(genome, seed)
    except EvaluationTimeout as exc:  # the same message as when the deadline passes first outside
        return {}, "timeout", str(exc)
    except Exception as exc:  # recorded, never silently dropped (a raise, out of memory, a diverging loss)
        return {}, "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    bad = [k for k, v in metrics.items() if not _finite(v)]
    if bad:
        return metrics, "failed", f"non-finite metric(s) {bad}"
    return metrics, "ok", None


CHILD_STARTUP_S = 120.0
"""How long a child evaluation process may take to start (import torch, load the evaluator)
before the evaluation counts as an infrastructure fault."""


def evaluate(evaluator: Evaluator, genome: Genome, timeout_s: float | None = None) -> EvaluationResult:
    """Run one evaluation, timing it. Exceptions, NaN or infinite metrics and a diverging loss
    give status ``failed`` with the reason; running past ``timeout_s`` gives ``timeout``.

    With a timeout the evaluation runs in a child process (:mod:`nas.evaluators.child`) that
    is killed, with everything it started, at the deadline: a timed-out candidate really
    stops, and nothing of it keeps running beside the next candidate on the same worker. The
    clock starts once the child has loaded the evaluator, so its start-up (about 0.3 s, a few
    seconds when it imports torch) costs wall time but never times a candidate out. A child that
    cannot start raises (an infrastructure fault, not the candidate's).
    """
    seed = candidate_seed(evaluator.base_seed, genome)
    start = time.time()
    t0 = time.perf_counter()
    if not timeout_s:
        metrics, status, error = _metrics(evaluator, genome, seed)
    else:
        metrics, status, error = _metrics_in_child(evaluator, genome, seed, timeout_s)
    return EvaluationResult(genome=genome, metrics=metrics, status=status, error=error, seed=seed,
                            worker=worker_name(), eval_seconds=time.perf_counter() - t0,
                            started_at=start, finished_at=time.time())


def _metrics_in_child(evaluator: Evaluator, genome: Genome, seed: int, timeout_s: float,
                      startup_s: float = CHILD_STARTUP_S) -> tuple[dict[str, float], str, str | None]:
    import json
    import pickle
    import selectors
    import signal
    import subprocess
    import sys

    payload = pickle.dumps((evaluator, genome, seed))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-m", "nas.evaluators.child"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
        proc.stdin = None  # sent in full; communicate() below only reads
        line, end = b"", time.monotonic() + startup_s
        with selectors.DefaultSelector() as sel:  # start-up (imports) does not count against the candidate
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n") and sel.select(max(0.0, end - time.monotonic())):
                chunk = os.read(proc.stdout.fileno(), 1)  # unbuffered: the rest is read by communicate()
                if not chunk:
                    break
                line += chunk
        ready = line == b"ready\n"
        if not ready:
            _kill_group(proc.pid, signal.SIGKILL)
            err = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            raise RuntimeError(f"the evaluation process did not start within {startup_s:g} s: " + " | ".join(err))
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {}, "timeout", _timeout_message(timeout_s)
    finally:
        _kill_group(proc.pid, signal.SIGKILL)  # anything the evaluation started and left behind
        proc.wait()
    try:
        doc = json.loads(out.decode("utf-8"))
        return dict(doc["metrics"]), doc["status"], doc["error"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        return {}, "failed", f"evaluation process exited with status {proc.returncode}: " + " | ".join(tail)


def _kill_group(pid: int, sig) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def lost_result(evaluator: Evaluator, genome: Genome, exc: BaseException) -> EvaluationResult:
    """The result recorded when Dask could not return one (its workers kept dying on it, or
    the task could not be run at all)."""
    now = time.time()
    return EvaluationResult(genome=genome, metrics={}, status="failed",
                            error=f"evaluation lost: {type(exc).__name__}: {exc}",
                            seed=candidate_seed(evaluator.base_seed, genome), worker="", eval_seconds=0.0,
                            started_at=now, finished_at=now)


class InfrastructureError(RuntimeError):
    """Evaluation failed for a reason outside the candidate (the scheduler or a worker was
    lost, a task could not be shipped or unpickled, the disk is full) more often than a
    resubmission could cure. The search stops; its checkpoint holds every finished generation
    and the journal every finished result, so rerunning the stage resumes it."""


class CompletionQueue:
    """The pool contract (what the runners use): ``submit`` candidates, iterate to get each
    ``(key, result)`` as it completes, ``add`` more while iterating, ``cancel`` what is still
    in flight. ``count()`` is the number submitted and not yet yielded. Results are the
    candidate's own: its exceptions, NaN metrics and timeouts become failed or timed-out
    results; faults outside it are the pool's to retry or raise as :class:`InfrastructureError`.

    This one evaluates in the calling process, one candidate at a time, in submission order
    (a candidate "runs" when the iteration reaches it)."""

    def __init__(self, timeout_s: float | None = None):
        from collections import deque

        self.timeout_s = timeout_s
        self._todo: "deque[tuple[str, Evaluator, Genome]]" = deque()
        self._n = 0

    def submit(self, evaluator: Evaluator, genome: Genome) -> str:
        key = f"evaluate-{genome.key()}-{self._n}"
        self._n += 1
        self._todo.append((key, evaluator, genome))
        return key

    def count(self) -> int:
        return len(self._todo)

    def is_empty(self) -> bool:
        return not self._todo

    def __iter__(self):
        return self

    def __next__(self) -> tuple[str, EvaluationResult]:
        if not self._todo:
            raise StopIteration
        key, evaluator, genome = self._todo.popleft()
        return key, evaluate(evaluator, genome, self.timeout_s)

    def cancel(self) -> list[str]:
        """Drop what was submitted and has not run; returns their keys."""
        keys = [k for k, _, _ in self._todo]
        self._todo.clear()
        return keys


class LocalPool:
    """Evaluate in this process, one candidate after another (same contract as ``DaskPool``:
    :meth:`queue`, :meth:`iter_evaluate`). For debugging, unit tests and small searches that
    need no cluster; it runs both generational and asynchronous searches."""

    n_workers = 1

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc) -> None:
        return None

    timeout_s: float | None = None

    def queue(self) -> CompletionQueue:
        return CompletionQueue(self.timeout_s)

    def release_idle(self) -> None:
        """The pool contract's "nothing more will be submitted until the next queue()": a pool may
        let workers go as they fall idle (Dask, the simulated pool). This one's worker is the
        calling process: nothing to release."""

    def iter_evaluate(self, evaluator: Evaluator, genomes: list[Genome], on_result=None, last: bool = False):
        """Evaluate ``genomes``, yielding results as they complete. ``last``: nothing follows this
        batch (a search's last generation), so workers may go as they fall idle (:meth:`release_idle`)."""
        q = self.queue()
        for g in genomes:
            q.submit(evaluator, g)
        if last:
            self.release_idle()
        for _, r in q:
            if on_result:
                on_result(r)
            yield r

    def evaluate(self, evaluator: Evaluator, genomes: list[Genome], on_result=None) -> list[EvaluationResult]:
        return list(self.iter_evaluate(evaluator, genomes, on_result))

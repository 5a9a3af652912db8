"""Run any evaluator on Dask: a LocalCluster of worker processes, or an existing scheduler.

Candidates are submitted as Dask futures and collected with ``as_completed``: results come
back in completion order, each recording the worker that produced it. A generation may be
submitted in chunks of several candidates per Dask task (``chunk_size``), for evaluations of
milliseconds where Dask's own cost per task would dominate.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import weakref
from collections import deque
from typing import Callable, Iterator

from nas.evaluators.base import Evaluator, InfrastructureError, evaluate, lost_result
from nas.genome import EvaluationResult, Genome

RESUBMITS = 2
"""Times a candidate is submitted again after an infrastructure fault, before the search stops."""
MIN_TASKS_PER_WORKER = 4
"""A chunked generation is cut so that every worker still gets at least this many tasks."""


def evaluate_chunk(evaluator: Evaluator, genomes: list[Genome], timeout_s: float | None = None) -> list[EvaluationResult]:
    """:func:`~nas.evaluators.base.evaluate` for each of ``genomes`` in turn, on one worker."""
    return [evaluate(evaluator, g, timeout_s) for g in genomes]


@functools.cache
def _search_adaptive():
    """Dask's ``Adaptive``, made for a search: it adds workers as candidates wait, but while
    ``hold`` is set it retires none. Plain adaptive scaling retires a worker that idles for a
    moment (between an asynchronous search's batches, while a generation waits for its slowest
    member) and starts another for the next candidates, which then loads the evaluator's data
    again; a search needs its workers back within seconds, so they are kept until the pool is
    told nothing more comes (:meth:`DaskPool.release_idle`), which clears ``hold``."""
    from distributed.deploy.adaptive import Adaptive

    class SearchAdaptive(Adaptive):
        hold = True

        async def target(self):
            target = await super().target()
            return max(target, len(self.plan)) if self.hold else target

    return SearchAdaptive


_LIVE: "weakref.WeakSet[DaskPool]" = weakref.WeakSet()
"""The pools of this process whose LocalCluster is open."""


def stand_down_local_workers() -> None:
    """Tell the nanny of every worker of this process's LocalClusters not to restart its worker.

    Called when a signal stops the run, just before the worker processes are sent SIGTERM: a
    nanny lives in this process and restarts a worker whose process ends while the cluster is
    running, and that fresh worker would outlive the run, fail to reach the gone scheduler and
    print its traceback into the user's terminal.
    """
    if not _LIVE:  # no pool open: nothing to stand down, and no reason to import distributed (1 s)
        return
    from distributed.core import Status

    for pool in list(_LIVE):
        if pool._scaler is not None:  # adaptive scaling would start workers in place of those that end
            with contextlib.suppress(Exception):
                pool._cluster.loop.add_callback(pool._scaler.stop)
        for nanny in list(getattr(pool._cluster, "workers", {}).values()):
            with contextlib.suppress(Exception):
                nanny.status = Status.closing_gracefully  # it closes itself once its worker ends


def fork_server_workers(preload: tuple[str, ...] = ()) -> contextlib.AbstractContextManager:
    """Dask settings under which a LocalCluster's nannies fork their worker processes from
    multiprocessing's fork server instead of spawning fresh interpreters.

    The fork server starts once per process, with ``distributed``, the packages Dask preloads and
    ``preload`` (e.g. an evaluator's module, which imports torch) imported; every worker after
    that, a restarted one included, is a fork of it and starts with those imports done. Measured
    on the 2-core reference machine: a spawned worker costs 3-4 s of CPU before its first
    candidate (torch alone takes 2 s to import), a forked one 0.1 s; the server itself costs
    about 3.5 s once. Where the platform has no fork server (Windows), or the Dask configuration
    names a start method other than Dask's default (``spawn``), nothing changes.

    A forked worker sees the environment the fork server started with (the nanny's environment
    variables such as ``OMP_NUM_THREADS=1`` included, as it starts with the first worker).
    """
    import multiprocessing
    from multiprocessing import forkserver

    import dask

    key = "distributed.worker.multiprocessing-method"
    if "forkserver" not in multiprocessing.get_all_start_methods() or dask.config.get(key) != "spawn":
        return contextlib.nullcontext()
    settings = dask.config.set({key: "forkserver"})
    from distributed.utils import get_mp_context

    ctx = get_mp_context()  # sets Dask's own preload list, the first time
    dask_preload = getattr(forkserver._forkserver, "_preload_modules", None) or ["distributed"]
    ctx.set_forkserver_preload(list(dict.fromkeys([*dask_preload, *preload])))  # no effect once the server runs
    return settings


class ClusterError(RuntimeError):
    """The Dask scheduler could not be reached or started."""


class DaskPool:
    """A Dask client for the lifetime of a ``with`` block.

    With ``scheduler_address`` set it connects to that scheduler (the workers there need
    only the installed ``evonas`` package; workers may join and leave during a search, and
    Dask reschedules what a leaving worker held); otherwise it starts a LocalCluster of
    ``workers`` processes bound to 127.0.0.1, or with ``adaptive=(minimum, maximum)`` one that
    Dask scales between those bounds as candidates wait.

    ``chunk_size`` > 1: :meth:`iter_evaluate` (a generation) sends up to that many candidates per
    Dask task, fewer when the generation would otherwise give a worker under
    :data:`MIN_TASKS_PER_WORKER` tasks. Results still come back one candidate at a time, and a
    chunk that fails outside its candidates is split and each candidate submitted again alone.
    The asynchronous runner's :meth:`queue` submits one candidate per task.

    A LocalCluster's workers are forked from a process that has imported ``preload`` once
    (:func:`fork_server_workers`), so starting or restarting one costs a fork, not an interpreter
    that imports torch again.
    """

    def __init__(self, workers: int = 2, threads_per_worker: int = 1, scheduler_address: str | None = None,
                 connect_timeout: float = 10.0, timeout_s: float | None = None, cluster: str = "local",
                 slurm: dict | None = None, log: Callable[[str], None] | None = None,
                 adaptive: tuple[int, int] | None = None, chunk_size: int = 1, preload: tuple[str, ...] = ()):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.timeout_s, self.chunk_size = timeout_s, chunk_size
        self.cluster, self.slurm = cluster, dict(slurm or {})
        self.log = log
        self.workers, self.threads_per_worker = workers, threads_per_worker
        self.adaptive = adaptive  # (minimum, maximum): Dask's adaptive scaling of the LocalCluster
        self.scheduler_address, self.connect_timeout = scheduler_address, connect_timeout
        self.preload = tuple(preload)  # modules a LocalCluster's workers import (fork_server_workers)
        self.client = None
        self._cluster = None
        self._released = False  # release_idle() until the next queue()
        self._scaler = None  # Dask's Adaptive of the cluster, once adaptive scaling is on
        self._settings = contextlib.ExitStack()

    def __enter__(self) -> "DaskPool":
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.scheduler_address:
            try:
                self.client = Client(self.scheduler_address, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"evaluation.scheduler_address {self.scheduler_address!r}: "
                                   f"no Dask scheduler answered within {self.connect_timeout:.0f}s ({exc})") from None
        elif self.cluster == "slurm":
            self._cluster = slurm_cluster(self.slurm)
            self._cluster.scale(jobs=self._bounds()[1])
            self.client = Client(self._cluster)
        else:
            n = self.adaptive[0] if self.adaptive else self.workers
            self._settings.enter_context(fork_server_workers(self.preload))  # for restarts and scaling too
            try:
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=self.threads_per_worker,
                                             processes=True, host="127.0.0.1",
                                             dashboard_address="127.0.0.1:0" if _has_bokeh() else None,
                                             silence_logs=logging.ERROR)
                if self.adaptive:
                    self._adapt(*self.adaptive, hold=True)
                self.client = Client(self._cluster)
            except BaseException:  # no `with` block to close what started: close it here
                if self._cluster is not None:
                    with contextlib.suppress(Exception):
                        self._cluster.close()
                self._settings.close()
                raise
            _LIVE.add(self)
        self._announce()
        return self

    def _announce(self) -> None:
        """Log where the Dask dashboard is (the scheduler's, when it serves one)."""
        try:
            link = self.client.dashboard_link if self.client.scheduler_info().get("services", {}).get("dashboard") \
                else None
        except Exception:  # noqa: BLE001 - information only
            link = None
        msg = f"Dask: {self.client.scheduler.address}, dashboard " + (
            link or "off (the scheduler serves none; install bokeh to get one)")
        logger = logging.getLogger("evonas")
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
        logger.info(msg)
        if self.log:
            self.log(msg)
        self.dashboard_link = link

    def __exit__(self, *exc) -> None:
        _LIVE.discard(self)
        with contextlib.suppress(Exception):
            self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
        self._settings.close()

    @property
    def n_workers(self) -> int:
        # asked of the scheduler each time: Client.scheduler_info() returns a cache that the client's own
        # periodic refresh overwrites with one that lists no workers (seen: 0 workers of 3 in a test)
        return len(self.client.nthreads())

    def evaluate(self, evaluator: Evaluator, genomes: list[Genome],
                 on_result: Callable[[EvaluationResult], None] | None = None) -> list[EvaluationResult]:
        """Evaluate all ``genomes``; returns results in completion order."""
        return list(self.iter_evaluate(evaluator, genomes, on_result))

    def queue(self) -> "DaskQueue":
        self._bring_back()
        return DaskQueue(self.client, self.timeout_s)

    def release_idle(self) -> None:
        """Nothing more will be submitted until the next :meth:`queue` or :meth:`iter_evaluate` (a
        runner draining at its budget): Dask retires this pool's workers as they fall idle, so the
        few slow candidates left do not hold a whole cluster (Slurm jobs, the memory of local worker
        processes). One worker stays unless ``adaptive.minimum`` is 0. Only an elastic cluster this
        pool started: Slurm, or a LocalCluster with ``evaluation.adaptive``. A fixed LocalCluster
        (``evaluation.workers``) keeps its processes: they run on the user's own machine, which costs
        the same either way, and retiring them would make the next work on the pool wait for new ones
        to start and load the evaluator's data again (measured: after a generational search released
        two of four workers, an asynchronous search on the same pool ran on two for its first four
        seconds). The workers of an external scheduler (``scheduler_address``) are not ours to retire."""
        if self._cluster is None or self._released or not (self.cluster == "slurm" or self.adaptive):
            return
        lo, hi = self._bounds()
        self._adapt(min(lo, 1), hi, hold=False)
        self._released = True

    def _adapt(self, minimum: int, maximum: int, hold: bool) -> None:
        """Adaptive scaling of the cluster this pool started, between these bounds; with ``hold`` it
        adds workers as candidates wait and retires none (:func:`_search_adaptive`)."""
        self._scaler = self._cluster.adapt(Adaptive=_search_adaptive(), minimum=minimum, maximum=maximum,
                                           interval="500ms", wait_count=2)
        self._scaler.hold = hold

    def _bounds(self) -> tuple[int, int]:
        """(minimum, maximum) workers of the cluster this pool started."""
        if self.cluster == "slurm":  # evaluation.slurm.jobs, one worker each (adaptive is the LocalCluster's)
            n = int(self.slurm.get("jobs", 2))
            return n, n
        return self.adaptive or (self.workers, self.workers)

    def _bring_back(self) -> None:
        """New work after :meth:`release_idle`: the cluster scales back to its bounds."""
        if self._released:
            self._adapt(*self._bounds(), hold=True)
            self._released = False

    def chunk_for(self, n: int) -> int:
        """Candidates per Dask task for a generation of ``n``."""
        if self.chunk_size == 1 or n == 0:
            return 1
        tasks = MIN_TASKS_PER_WORKER * max(1, self.n_workers)
        return max(1, min(self.chunk_size, math.ceil(n / tasks)))

    def iter_evaluate(self, evaluator: Evaluator, genomes: list[Genome],
                      on_result: Callable[[EvaluationResult], None] | None = None,
                      last: bool = False) -> Iterator[EvaluationResult]:
        """Results as they complete; ``last``: nothing follows (see :meth:`release_idle`)."""
        q = self.queue()
        size = self.chunk_for(len(genomes))
        for i in range(0, len(genomes), size):
            q.submit_chunk(evaluator, genomes[i:i + size])
        if last:
            self.release_idle()
        for _, res in q:
            if on_result:
                on_result(res)
            yield res


class DaskQueue:
    """The pool contract (:class:`nas.evaluators.base.CompletionQueue`) on a Dask client.

    Faults are charged to the right party. The candidate's own failures (exceptions while it
    is built, trained or scored, NaN, its timeout) come back as failed results from
    :func:`~nas.evaluators.base.evaluate` on the worker. A worker that died while running it
    makes Dask run it elsewhere (up to ``distributed.scheduler.allowed-failures`` times); when
    Dask gives up (``KilledWorker``: the candidate keeps killing its workers) it is recorded as
    failed. Anything else (the scheduler lost, the task cancelled under us, a task that cannot
    be shipped or unpickled, an OS error) is not the candidate's doing: it is submitted again,
    up to :data:`RESUBMITS` times, and then :class:`InfrastructureError` stops the search
    resumably. A lost scheduler stops it at once.

    A chunk (:meth:`submit_chunk`: several candidates in one Dask task) whose task fails is split:
    each of its candidates is submitted again on its own (after ``KilledWorker`` without counting
    an attempt, since which of them killed the workers is unknown), so every fault is still
    charged to one candidate."""

    def __init__(self, client, timeout_s: float | None = None, resubmits: int = RESUBMITS):
        from distributed import as_completed

        self.client, self.timeout_s, self.resubmits = client, timeout_s, resubmits
        self._ac = as_completed()
        # future key -> (candidate keys, evaluator, genomes, attempt, future); one genome: a single task
        self._meta: dict[str, tuple[list[str], Evaluator, list[Genome], int, object]] = {}
        self._ready: deque[tuple[str, EvaluationResult]] = deque()  # the rest of a finished chunk
        self._n = 0

    def _submit(self, keys: list[str], evaluator: Evaluator, genomes: list[Genome], attempt: int) -> None:
        task_key = keys[0] if len(keys) == 1 else f"chunk{len(keys)}-{keys[0]}"
        task_key = f"{task_key}-try{attempt}" if attempt else task_key
        if len(genomes) == 1:
            fut = self.client.submit(evaluate, evaluator, genomes[0], self.timeout_s, pure=False, key=task_key)
        else:
            fut = self.client.submit(evaluate_chunk, evaluator, genomes, self.timeout_s, pure=False, key=task_key)
        self._meta[fut.key] = (keys, evaluator, genomes, attempt, fut)
        self._ac.add(fut)

    def _new_key(self, genome: Genome) -> str:
        key = f"evaluate-{genome.key()}-{self._n}"
        self._n += 1
        return key

    def submit(self, evaluator: Evaluator, genome: Genome) -> str:
        key = self._new_key(genome)
        self._submit([key], evaluator, [genome], 0)
        return key

    def submit_chunk(self, evaluator: Evaluator, genomes: list[Genome]) -> list[str]:
        """Evaluate ``genomes`` one after another in one Dask task; their results come back one
        at a time like any other (keys in the order given)."""
        keys = [self._new_key(g) for g in genomes]
        if keys:
            self._submit(keys, evaluator, list(genomes), 0)
        return keys

    def count(self) -> int:
        """Candidates submitted and not yet returned."""
        return sum(len(m[0]) for m in self._meta.values()) + len(self._ready)

    def is_empty(self) -> bool:
        return not self._ready and self._ac.is_empty()

    def __iter__(self):
        return self

    def __next__(self) -> tuple[str, EvaluationResult]:
        from distributed.scheduler import KilledWorker

        if self._ready:
            return self._ready.popleft()
        while True:
            fut = next(self._ac)  # StopIteration when nothing is in flight
            keys, evaluator, genomes, attempt, _ = self._meta.pop(fut.key)
            try:
                res = fut.result()
                if len(genomes) == 1:
                    return keys[0], res
                self._ready.extend(zip(keys, res))
                return self._ready.popleft()
            except KilledWorker as exc:  # its workers kept dying on it: the candidate's own fault
                if len(genomes) == 1:
                    return keys[0], lost_result(evaluator, genomes[0], exc)
                cause = None  # a chunk: which candidate is unknown, so each runs again alone
            except Exception as exc:  # noqa: BLE001 - classified below (cancelled futures included)
                cause = f"{type(exc).__name__}: {exc}"
            what = genomes[0].key() if len(genomes) == 1 else f"a chunk of {len(genomes)} candidates"
            if self.client.status not in ("running", "connecting"):
                raise InfrastructureError(
                    f"the Dask scheduler was lost while evaluating {what} ({cause}). The search stopped; "
                    "every finished generation is checkpointed: rerun the search stage to resume it.")
            if cause is not None and attempt >= self.resubmits:
                raise InfrastructureError(
                    f"evaluating {what} failed {attempt + 1} times for a reason outside the candidate "
                    f"({cause}). The search stopped; every finished generation is checkpointed: fix the cluster "
                    "(workers' environment, disk, network) and rerun the search stage to resume it.")
            for k, g in zip(keys, genomes):
                self._submit([k], evaluator, [g], attempt if cause is None else attempt + 1)

    def cancel(self) -> list[str]:
        """Cancel every future still in flight; returns their keys."""
        keys = [k for k, _ in self._ready]
        for ks, _, _, _, fut in list(self._meta.values()):
            fut.cancel()
            keys.extend(ks)
        self._meta.clear()
        self._ready.clear()
        self._ac.clear()
        return keys


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def slurm_cluster(opts: dict):
    """dask-jobqueue's SLURMCluster from ``evaluation.slurm`` (one worker process per job)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:  # pragma: no cover - pinned in requirements.lock
        raise ClusterError(f"evaluation.cluster 'slurm' needs dask-jobqueue ({exc})") from None
    kw = dict(queue=opts.get("queue"), account=opts.get("account"), cores=int(opts.get("cores", 1)), processes=1,
              memory=opts.get("memory", "4GB"), walltime=opts.get("walltime", "02:00:00"),
              job_extra_directives=list(opts.get("job_extra_directives") or []),
              job_script_prologue=list(opts.get("job_script_prologue") or []),
              log_directory=opts.get("log_directory"), interface=opts.get("interface"),
              job_name="evonas-worker", silence_logs="error",
              scheduler_options={"dashboard_address": ":0"})  # a free port, logged when the client starts
    return SLURMCluster(**{k: v for k, v in kw.items() if v is not None})

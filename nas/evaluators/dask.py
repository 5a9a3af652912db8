"""Run any evaluator on Dask: a LocalCluster of worker processes, or an existing scheduler.

Candidates are submitted as Dask futures and collected with ``as_completed``: results come
back in completion order, each recording the worker that produced it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

from nas.evaluators.base import Evaluator, InfrastructureError, evaluate, lost_result
from nas.genome import EvaluationResult, Genome

RESUBMITS = 2
"""Times a candidate is submitted again after an infrastructure fault, before the search stops."""


class ClusterError(RuntimeError):
    """The Dask scheduler could not be reached or started."""


class DaskPool:
    """A Dask client for the lifetime of a ``with`` block.

    With ``scheduler_address`` set it connects to that scheduler (the workers there need
    only the installed ``evonas`` package; workers may join and leave during a search, and
    Dask reschedules what a leaving worker held); otherwise it starts a LocalCluster of
    ``workers`` processes bound to 127.0.0.1, or with ``adaptive=(minimum, maximum)`` one that
    Dask scales between those bounds as candidates wait.
    """

    def __init__(self, workers: int = 2, threads_per_worker: int = 1, scheduler_address: str | None = None,
                 connect_timeout: float = 10.0, timeout_s: float | None = None, cluster: str = "local",
                 slurm: dict | None = None, log: Callable[[str], None] | None = None,
                 adaptive: tuple[int, int] | None = None):
        self.timeout_s = timeout_s
        self.cluster, self.slurm = cluster, dict(slurm or {})
        self.log = log
        self.workers, self.threads_per_worker = workers, threads_per_worker
        self.adaptive = adaptive  # (minimum, maximum): Dask's adaptive scaling of the LocalCluster
        self.scheduler_address, self.connect_timeout = scheduler_address, connect_timeout
        self.client = None
        self._cluster = None

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
            self._cluster.scale(jobs=int(self.slurm.get("jobs", 2)))
            self.client = Client(self._cluster)
        else:
            n = self.adaptive[0] if self.adaptive else self.workers
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=self.threads_per_worker,
                                         processes=True, host="127.0.0.1",
                                         dashboard_address="127.0.0.1:0" if _has_bokeh() else None,
                                         silence_logs=logging.ERROR)
            if self.adaptive:
                self._cluster.adapt(minimum=self.adaptive[0], maximum=self.adaptive[1], interval="500ms",
                                    wait_count=2)
            self.client = Client(self._cluster)
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
        with contextlib.suppress(Exception):
            self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()

    @property
    def n_workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def evaluate(self, evaluator: Evaluator, genomes: list[Genome],
                 on_result: Callable[[EvaluationResult], None] | None = None) -> list[EvaluationResult]:
        """Evaluate all ``genomes``; returns results in completion order."""
        return list(self.iter_evaluate(evaluator, genomes, on_result))

    def queue(self) -> "DaskQueue":
        return DaskQueue(self.client, self.timeout_s)

    def iter_evaluate(self, evaluator: Evaluator, genomes: list[Genome],
                      on_result: Callable[[EvaluationResult], None] | None = None) -> Iterator[EvaluationResult]:
        q = self.queue()
        for g in genomes:
            q.submit(evaluator, g)
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
    resumably. A lost scheduler stops it at once."""

    def __init__(self, client, timeout_s: float | None = None, resubmits: int = RESUBMITS):
        from distributed import as_completed

        self.client, self.timeout_s, self.resubmits = client, timeout_s, resubmits
        self._ac = as_completed()
        self._meta: dict[str, tuple[str, Evaluator, Genome, int, object]] = {}  # future key -> (key, ev, g, try, fut)
        self._n = 0

    def _submit(self, key: str, evaluator: Evaluator, genome: Genome, attempt: int) -> None:
        fut = self.client.submit(evaluate, evaluator, genome, self.timeout_s, pure=False,
                                 key=f"{key}-try{attempt}" if attempt else key)
        self._meta[fut.key] = (key, evaluator, genome, attempt, fut)
        self._ac.add(fut)

    def submit(self, evaluator: Evaluator, genome: Genome) -> str:
        key = f"evaluate-{genome.key()}-{self._n}"
        self._n += 1
        self._submit(key, evaluator, genome, 0)
        return key

    def count(self) -> int:
        return self._ac.count()

    def is_empty(self) -> bool:
        return self._ac.is_empty()

    def __iter__(self):
        return self

    def __next__(self) -> tuple[str, EvaluationResult]:
        from distributed.scheduler import KilledWorker

        while True:
            fut = next(self._ac)  # StopIteration when nothing is in flight
            key, evaluator, genome, attempt, _ = self._meta.pop(fut.key)
            try:
                return key, fut.result()
            except KilledWorker as exc:  # its workers kept dying on it: the candidate's own fault
                return key, lost_result(evaluator, genome, exc)
            except Exception as exc:  # noqa: BLE001 - classified below (cancelled futures included)
                cause = f"{type(exc).__name__}: {exc}"
            if self.client.status not in ("running", "connecting"):
                raise InfrastructureError(
                    f"the Dask scheduler was lost while evaluating {genome.key()} ({cause}). The search stopped; "
                    "every finished generation is checkpointed: rerun the search stage to resume it.")
            if attempt >= self.resubmits:
                raise InfrastructureError(
                    f"evaluating {genome.key()} failed {attempt + 1} times for a reason outside the candidate "
                    f"({cause}). The search stopped; every finished generation is checkpointed: fix the cluster "
                    "(workers' environment, disk, network) and rerun the search stage to resume it.")
            self._submit(key, evaluator, genome, attempt + 1)

    def cancel(self) -> list[str]:
        """Cancel every future still in flight; returns their keys."""
        keys = []
        for key, _, _, _, fut in list(self._meta.values()):
            fut.cancel()
            keys.append(key)
        self._meta.clear()
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

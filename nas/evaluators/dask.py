"""Run any evaluator on Dask: a LocalCluster of worker processes, or an existing scheduler.

Candidates are submitted as Dask futures and collected with ``as_completed``: results come
back in completion order, each recording the worker that produced it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

from nas.evaluators.base import Evaluator, evaluate, lost_result
from nas.genome import EvaluationResult, Genome


class ClusterError(RuntimeError):
    """The Dask scheduler could not be reached or started."""


class DaskPool:
    """A Dask client for the lifetime of a ``with`` block.

    With ``scheduler_address`` set it connects to that scheduler (the workers there need
    only the installed ``evonas`` package); otherwise it starts a LocalCluster of
    ``workers`` processes bound to 127.0.0.1.
    """

    def __init__(self, workers: int = 2, threads_per_worker: int = 1, scheduler_address: str | None = None,
                 connect_timeout: float = 10.0, timeout_s: float | None = None, cluster: str = "local",
                 slurm: dict | None = None, log: Callable[[str], None] | None = None):
        self.timeout_s = timeout_s
        self.cluster, self.slurm = cluster, dict(slurm or {})
        self.log = log
        self.workers, self.threads_per_worker = workers, threads_per_worker
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
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=self.threads_per_worker,
                                         processes=True, host="127.0.0.1",
                                         dashboard_address="127.0.0.1:0" if _has_bokeh() else None,
                                         silence_logs=logging.ERROR)
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

    def iter_evaluate(self, evaluator: Evaluator, genomes: list[Genome],
                      on_result: Callable[[EvaluationResult], None] | None = None) -> Iterator[EvaluationResult]:
        from distributed import as_completed

        if not genomes:
            return
        futures = {self.client.submit(evaluate, evaluator, g, self.timeout_s, pure=False,
                                      key=f"evaluate-{g.key()}-{i}"): g for i, g in enumerate(genomes)}
        for fut in as_completed(futures):
            res = future_result(fut, evaluator, futures[fut])
            if on_result:
                on_result(res)
            yield res


def future_result(fut, evaluator: Evaluator, genome: Genome) -> EvaluationResult:
    """The future's result. A worker that died while running it makes Dask run it again
    elsewhere (up to ``distributed.scheduler.allowed-failures`` times); when Dask gives up,
    or the task cannot run at all, the candidate is recorded as failed, not lost."""
    try:
        return fut.result()
    except Exception as exc:  # KilledWorker, a task that cannot be deserialised, ...
        return lost_result(evaluator, genome, exc)


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

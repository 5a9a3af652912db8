"""Checks run before any flow starts, so bad input fails in seconds with one clear message.

Each check raises :class:`PreflightError` naming the offending key or file and what was
expected; nothing has been written when it does (the CLI exits with status 2).
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

from nas.config import Config


class PreflightError(ValueError):
    """Input that would make a stage fail: say so before anything runs."""


def check(cfg: Config, stages: tuple[str, ...], resume: bool | None = None) -> None:
    """``stages``: the stages about to run (in order)."""
    first = stages[0] if stages else None
    from nas.env import default_threads

    try:
        default_threads()  # EVONAS_TORCH_THREADS, read by every stage that trains
    except ValueError as exc:
        raise PreflightError(str(exc)) from None
    if "prepare" in stages:
        _check_data(cfg)
    from nas.backends import MissingInput, backend

    if any(s in stages for s in ("surrogate", "search")):
        _check_scheduler(cfg)
        from nas.config import ConfigError

        try:
            backend(cfg).check_pool(cfg)
        except ConfigError as exc:
            raise PreflightError(str(exc)) from None
    try:
        backend(cfg).preflight(cfg, first)  # the files this kind of evaluation needs before `first`
    except MissingInput as exc:
        raise PreflightError(str(exc)) from None
    if first == "select":
        pops = Path(cfg.search.out_dir) / "populations"
        if not any(pops.glob("gen_*.parquet")):
            raise PreflightError(f"{pops}: no population snapshots to select from (run `evonas stage search` first)")
    if first == "search" and resume is not False:
        from nas.checkpoint import resume_decision

        # a checkpoint of these params that cannot be read (or, with --resume, none of them):
        # CheckpointError, before any work starts
        resume_decision(cfg, resume)


def _check_data(cfg: Config) -> None:
    d = cfg.data
    if d.kind == "digits":
        return
    if d.kind in ("omniglot", "omniglot_pooled", "multi"):  # task data: reading it is quick and checks every path and layout
        from nas.data import DataError, load_tasks

        try:
            load_tasks(d, cfg.seed)
        except DataError as exc:
            raise PreflightError(str(exc)) from None
        return
    path = Path(d.path)
    if not path.exists():
        expected = "a .npz file with arrays 'x' and 'y'" if d.kind == "npz" else "a folder of <class>/<image> files"
        raise PreflightError(f"data.path {str(path)!r} does not exist (expected {expected})")
    if d.kind == "folder" and not path.is_dir():
        raise PreflightError(f"data.path {str(path)!r} is not a folder (data.kind is 'folder': expected "
                             "<class>/<image> sub-folders)")
    from nas.data import _stratified, load_source

    # read it and draw the split as the prepare stage will (shapes, dtypes, labels, unreadable
    # images, classes too small to split): DataError names what is wrong, in seconds, before
    # Prefect starts. The split's indices suffice; normalising and hashing wait for the stage.
    _, y, names = load_source(d)
    _stratified(y, names, d, cfg.seed)


def _check_table(cfg: Config) -> None:
    from nas.evaluators.table import TableEvaluator

    t = cfg.evaluation.table
    # a missing file or column, a cell that does not parse: TableError names it. The table is
    # cached, so a search in this process does not read it again.
    TableEvaluator(path=t.path, signal_column=t.signal_column, report_column=t.report_column,
                   cost_columns=tuple(t.cost_columns), arch_column=t.arch_column,
                   sim_seconds_column=t.sim_seconds_column).table()


def _check_scheduler(cfg: Config, timeout: float = 3.0) -> None:
    addr = cfg.evaluation.scheduler_address
    if not addr:
        return
    url = urlparse(addr if "://" in addr else f"tcp://{addr}")
    if url.scheme not in ("tcp", "tls") or not url.hostname or not url.port:
        raise PreflightError(f"evaluation.scheduler_address {addr!r}: expected tcp://host:port")
    try:
        with socket.create_connection((url.hostname, url.port), timeout=timeout):
            pass
    except OSError as exc:
        raise PreflightError(f"evaluation.scheduler_address {addr!r}: no Dask scheduler is listening there "
                             f"({exc.strerror or exc}); start one with `dask scheduler`, or leave the key unset "
                             "for a local cluster") from None

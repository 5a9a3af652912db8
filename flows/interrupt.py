"""Prompt, clean shutdown of an ``evonas`` process on SIGINT (Ctrl-C) or SIGTERM.

Without this, Ctrl-C in a terminal (SIGINT to the whole process group) reached Prefect's
temporary API server and the Dask worker processes as well as ``evonas``: the server died, the
pipeline went on for minutes and printed connection tracebacks; and during a flow run Prefect's
own SIGTERM handler turned SIGTERM into a crash report to a server that was gone.

:func:`run_supervised`, used by the entry point:

- blocks SIGINT before any thread or child process exists. A blocked signal stays blocked in
  every thread and process started later (Prefect's server, Dask's nanny and worker processes),
  so Ctrl-C reaches only the supervising main thread, which stops the children itself;
- runs the command in a worker thread, so Prefect cannot put its SIGTERM handler in place of
  ours (Python runs signal handlers, and lets them be set, only in the main thread);
- keeps the main thread waiting for SIGINT (``signal.sigtimedwait``) and SIGTERM (a handler).

Stopping means: one line on stderr naming the signal, where the run was (:func:`mark`) and how
to resume; SIGTERM to every descendant process, SIGKILL to those still alive after a grace
period; then ``os._exit`` with 128 + the signal number. Every file evonas writes goes through
a temporary file and a rename (``nas.io``), and a search journals each result, so an abrupt
exit leaves no half-written output and the search resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

_WHERE = {"stage": "start-up", "command": "run"}
_STOPPING = threading.Lock()
GRACE_S = 3.0
"""Seconds the child processes get to exit on SIGTERM before SIGKILL."""


def mark(stage: str, command: str | None = None) -> None:
    """Record the stage a run is in (and, once, the command: ``run`` or ``stage``), for the line
    printed when a signal stops it."""
    _WHERE["stage"] = stage
    if command:
        _WHERE["command"] = command


def resume_hint(stage: str, command: str) -> str:
    """How to go on after a stop during ``stage`` of ``evonas <command>``."""
    same = "with the same --params and --set"
    if stage == "the search stage":
        how = "run the same command again" if command == "stage" else (
            f"run `evonas stage search`, then `evonas stage select`, {same} (`evonas run` would redo the "
            "earlier stages and start the search afresh; `dvc repro` resumes too)")
        return f"to resume the search from its last checkpoint, {how}"
    if stage == "the select stage":
        return f"the search is complete; `evonas stage select` {same} redoes the selection"
    return "run the same command again to start it over"


def _descendants() -> list:
    try:
        import psutil

        return psutil.Process().children(recursive=True)
    except Exception:  # psutil missing or the process table unreadable: nothing more we can do
        return []


def stop_children(grace_s: float = GRACE_S) -> None:
    """SIGTERM to every descendant process, SIGKILL to those alive after ``grace_s`` seconds."""
    kids = _descendants()
    for p in kids:
        try:
            p.terminate()
        except Exception:
            pass
    try:
        import psutil

        _, alive = psutil.wait_procs(kids, timeout=grace_s)
    except Exception:
        alive = kids
    for p in alive:
        try:
            p.kill()
        except Exception:
            pass


def _stop(signum: int) -> None:
    if not _STOPPING.acquire(blocking=False):
        return  # a second signal while stopping: the first one finishes the job
    name = signal.Signals(signum).name
    try:
        sys.stderr.write(f"evonas: stopped by {name} during {_WHERE['stage']}; "
                         f"{resume_hint(_WHERE['stage'], _WHERE['command'])}.\n")
        sys.stderr.flush()
    except Exception:
        pass
    try:
        dask = sys.modules.get("nas.evaluators.dask")  # only if a Dask pool may be open
        if dask is not None:
            dask.stand_down_local_workers()
    except Exception:
        pass
    try:
        stop_children()
    finally:
        os._exit(128 + signum)


def run_supervised(command: Callable[[], object]) -> int:
    """Run ``command`` in a worker thread under the signal handling above; returns its exit code
    (``SystemExit`` codes as they are, 1 for an uncaught exception, which the thread prints).
    Outside the main thread it just runs ``command``."""
    if threading.current_thread() is not threading.main_thread():
        command()
        return 0
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda signum, frame: _stop(signum))
    result: dict = {"code": 0}

    def body() -> None:
        try:
            command()
        except SystemExit as exc:
            code = exc.code
            result["code"] = code if isinstance(code, int) else (0 if code is None else 1)
            if code is not None and not isinstance(code, int):
                sys.stderr.write(f"{code}\n")
        except BaseException:
            result["code"] = 1
            raise

    worker = threading.Thread(target=body, name="evonas-command")
    worker.start()
    while worker.is_alive():
        if signal.sigtimedwait({signal.SIGINT}, 0.2) is not None:
            _stop(signal.SIGINT)
    worker.join()
    return result["code"]

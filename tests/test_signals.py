"""Real signals to a real ``evonas``: SIGINT to the whole process group (what Ctrl-C in a terminal
sends) and SIGTERM, at Prefect start-up, during pretraining, during Dask evaluation and during
export. Each must end the process within 10 seconds with one line saying where it stopped and
how to go on, no traceback, no orphaned Prefect or Dask process; a search stopped so resumes
from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, TINY

pytestmark = pytest.mark.integration


def _args(*cmd: str) -> list[str]:
    return [*cmd, "--params", str(ROOT / "params.yaml"), *[a for s in TINY for a in ("--set", s)]]


class Run:
    """An ``evonas`` process in its own process group (as a terminal's foreground job), its
    stdout and stderr collected by threads."""

    def __init__(self, exe: str, args: list[str], cwd: Path, env: dict):
        self.proc = subprocess.Popen([exe, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(s,), daemon=True)
                         for s in (self.proc.stdout, self.proc.stderr)]
        for t in self._threads:
            t.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 240) -> None:
        t0 = time.time()
        while needle not in self.text:
            assert self.proc.poll() is None, f"exited before {needle!r}:\n{self.text[-3000:]}"
            assert time.time() - t0 < timeout, f"no {needle!r} within {timeout}s:\n{self.text[-3000:]}"
            time.sleep(0.1)

    def stop(self, sig: int, to_group: bool) -> tuple[int, float, list]:
        """Send ``sig`` (to the process group, or the process alone); returns the exit code, the
        seconds to exit, and the descendant processes that existed when the signal was sent."""
        kids = psutil.Process(self.proc.pid).children(recursive=True)
        t0 = time.time()
        if to_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
        took = time.time() - t0
        for t in self._threads:
            t.join(timeout=5)
        return rc, took, kids


def _alive(procs: list) -> list:
    time.sleep(0.5)
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return out


def _check(run: Run, sig: int, to_group: bool, where: str) -> str:
    rc, took, kids = run.stop(sig, to_group)
    name = signal.Signals(sig).name
    assert rc == 128 + sig, f"exit {rc}:\n{run.text[-3000:]}"
    assert took < 10, f"took {took:.1f}s to stop"
    assert "Traceback" not in run.text, run.text[-4000:]
    stops = [ln for ln in run.lines if ln.startswith("evonas: stopped by")]
    assert len(stops) == 1 and f"stopped by {name} during {where};" in stops[0], run.text[-2000:]
    assert not _alive(kids), f"orphans after {name}: {_alive(kids)}"
    return stops[0]


def test_sigint_to_the_group_at_prefect_start_up_stops_the_temporary_server_too(tmp_path, evonas_bin):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / ".prefect")
    run = Run(evonas_bin, _args("run"), tmp_path, env)
    run.wait_for("Starting temporary server")
    line = _check(run, signal.SIGINT, True, "Prefect start-up")
    assert "run the same command again" in line


def test_signals_during_pretraining_evaluation_and_export_then_the_search_resumes(tmp_path, evonas_bin, runs_api,
                                                                                trained):
    import shutil

    env = {**os.environ, "PREFECT_API_URL": runs_api, "PREFECT_HOME": str(tmp_path / ".prefect")}
    src = Path(trained.data.out_dir).parents[1]  # the shared fixture's prepared digits and 2-epoch supernet
    for rel in ("data/prepared", "artifacts/supernet"):
        shutil.copytree(src / rel, tmp_path / rel)
    sets = [*TINY, f"data.out_dir={tmp_path}/data/prepared", f"supernet.out_dir={tmp_path}/artifacts/supernet",
            f"surrogate.out_dir={tmp_path}/artifacts/surrogate",
            "surrogate.n_samples=8",
            "search.strategy=nsga2", "search.generations=6", "selection.finetune_epochs=40"]

    def args(*cmd: str, extra: tuple = ()) -> list[str]:
        return [*cmd, "--params", str(ROOT / "params.yaml"), *[a for x in (*sets, *extra) for a in ("--set", x)]]

    # Ctrl-C (SIGINT to the group) while a supernet trains: the earlier run's supernet is untouched
    weights = tmp_path / "artifacts" / "supernet" / "supernet.pt"
    before = weights.read_bytes()
    run = Run(evonas_bin, args("stage", "pretrain", extra=("supernet.epochs=10",)), tmp_path, env)
    run.wait_for("pretrain supernet (epochs): ")
    _check(run, signal.SIGINT, True, "the pretrain stage")
    assert weights.read_bytes() == before, "an interrupted pretraining changed the earlier supernet"
    assert not list(tmp_path.rglob(".*.tmp*")), "a temporary file was left behind"

    # SIGTERM to the process alone while Dask workers evaluate candidates; the search then resumes
    from nas import stages
    from nas.config import load_config

    cfg = load_config(ROOT / "params.yaml", sets)  # the surrogate stage in this process (no second Prefect run)
    stages.fit_surrogate(cfg, stages.sample_subnets(cfg), 0.0)
    run = Run(evonas_bin, args("stage", "search"), tmp_path, env)
    run.wait_for("search (nsga2, 7 generations): ")
    line = _check(run, signal.SIGTERM, False, "the search stage")
    assert "to resume the search from its last checkpoint, run the same command again" in line
    resumed = subprocess.run([evonas_bin, *args("stage", "search")], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "search: resuming from" in resumed.stdout + resumed.stderr

    # Ctrl-C while the selected models are fine-tuned and exported
    run = Run(evonas_bin, args("stage", "select"), tmp_path, env)
    run.wait_for("Task run 'pareto-front")  # logged after the select flow marks its stage, before fine-tuning
    line = _check(run, signal.SIGINT, True, "the select stage")
    assert "the search is complete" in line

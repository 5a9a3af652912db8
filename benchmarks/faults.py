"""Fault-tolerance benchmark: a search on a real local Dask cluster, with faults injected.

What it does, in one run:

1. starts a ``dask scheduler`` and three ``dask worker`` processes on 127.0.0.1;
2. runs a reference search through ``evonas stage search`` (table evaluator on a generated
   NAS-Bench-201-shaped table, generational mode, failing / NaN / hanging candidates injected
   with ``evaluation.faults`` and ``evaluation.timeout_s``), uninterrupted;
3. runs the same search again, SIGKILLs one Dask worker mid-search, SIGKILLs the search
   process (its whole process group) once, and resumes it with ``evonas stage search``;
4. compares the two archives (candidates lost, duplicated, identical after resume);
5. feeds the bad-input table of ``tests/test_bad_input.py`` to the CLI.

Prints a table; ``--json PATH`` writes the figures. Targets: candidates_lost = 0,
candidates_duplicated = 0, resume_identical = true, every bad input a clear error.

    python benchmarks/faults.py [--population 12] [--generations 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent


def wait_for(pred, what: str, timeout: float = 120, proc: subprocess.Popen | None = None) -> None:
    end = time.time() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"gave up waiting for {what}: the process ended (exit {proc.returncode})")
        if time.time() > end:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    def __init__(self, n_workers: int, log_dir: Path):
        from tests.conftest import free_port

        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.logs = [open(log_dir / f"dask-{i}.log", "w") for i in range(n_workers + 1)]
        self.scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                                           str(self.port), "--no-dashboard"], env=env, stdout=self.logs[0],
                                          stderr=subprocess.STDOUT)
        wait_for(lambda: listening(self.port), "the Dask scheduler", proc=self.scheduler)
        self.workers = [subprocess.Popen([str(BIN / "dask"), "worker", self.address, "--nthreads", "1", "--no-nanny",
                                          "--no-dashboard", "--host", "127.0.0.1", "--name", f"worker-{i}"],
                                         env=env, cwd=ROOT, stdout=self.logs[i + 1], stderr=subprocess.STDOUT)
                        for i in range(n_workers)]
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            c.wait_for_workers(n_workers, timeout=120)

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.kill()
            p.wait()
        for f in self.logs:
            f.close()


def search_args(table: Path, address: str, a) -> list[str]:
    from tests.conftest import synthetic_table_sets

    sets = [*synthetic_table_sets(table), f"search.strategy={a.strategy}",
            f"search.population={a.population}", f"search.generations={a.generations}",
            f"evaluation.table.sim_seconds={a.sim_seconds}", f"evaluation.scheduler_address={address}",
            f"evaluation.faults.error_rate={a.error_rate}", f"evaluation.faults.nan_rate={a.nan_rate}",
            f"evaluation.faults.hang_rate={a.hang_rate}", "evaluation.faults.hang_seconds=60",
            f"evaluation.timeout_s={a.timeout_s}", f"seed={a.seed}"]
    return [str(BIN / "evonas"), "stage", "search", "--params", str(ROOT / "params.yaml")] + \
        [x for s in sets for x in ("--set", s)]


def populations(root: Path) -> pd.DataFrame:
    files = sorted((root / "artifacts/search/populations").glob("gen_*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def journal_lines(root: Path) -> int:
    found = list(root.glob("artifacts/search-runs/*/journal.jsonl"))  # the run folder (nas.checkpoint)
    return len(found[0].read_text().splitlines()) if found else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--population", type=int, default=12)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--strategy", default="aging")
    ap.add_argument("--sim-seconds", type=float, default=0.3)
    ap.add_argument("--error-rate", type=float, default=0.08)
    ap.add_argument("--nan-rate", type=float, default=0.05)
    ap.add_argument("--hang-rate", type=float, default=0.05)
    ap.add_argument("--timeout-s", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    a = ap.parse_args()

    from tests.conftest import make_synthetic
    from tests.test_bad_input import judge, run_all

    work = a.keep or Path(tempfile.mkdtemp(prefix="evonas-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    table = make_synthetic(work / "table.csv")
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect"), "OMP_NUM_THREADS": "1"}
    expected = a.population * (a.generations + 1)
    t_start = time.time()
    cluster = Cluster(3, work)
    try:
        print(f"dask scheduler {cluster.address}, 3 workers (pids {[w.pid for w in cluster.workers]})", flush=True)
        cmd = search_args(table, cluster.address, a)

        ref = work / "reference"
        ref.mkdir()
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ref, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            return 1
        print(f"reference search: {time.time() - t0:.0f}s", flush=True)

        run = work / "faulted"
        run.mkdir()
        first = subprocess.Popen(cmd, cwd=run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        wait_for(lambda: journal_lines(run) >= a.population // 2, "first results", proc=first)
        victim = cluster.workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        print(f"SIGKILL dask worker pid {victim.pid} after {journal_lines(run)} results", flush=True)
        wait_for(lambda: (run / "artifacts/search/populations/gen_002.parquet").exists(), "generation 2",
                 proc=first)
        time.sleep(a.sim_seconds * 2)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = journal_lines(run)
        print(f"SIGKILL search process group after {killed_at} results", flush=True)
        resumed = subprocess.run(cmd + ["--resume"], cwd=run, env=env, capture_output=True, text=True)
        if resumed.returncode != 0:
            print(resumed.stderr[-3000:])
            return 1
        print("resumed search finished", flush=True)
    finally:
        cluster.close()

    A, B = populations(ref), populations(run)
    cols = ["candidate_id", "genome", "val_accuracy", "lat_ms", "status", "generation"]
    resume_identical = bool(len(A) == len(B) and A[cols].equals(B[cols]))
    summary = json.loads((run / "artifacts/search/summary.json").read_text())
    ref_summary = json.loads((ref / "artifacts/search/summary.json").read_text())
    distinct_expected = len(A)  # the reference's distinct candidates (a strategy never re-proposes one)
    lost = max(0, distinct_expected - B.candidate_id.nunique())
    duplicated = int(len(B) - B.candidate_id.nunique())
    injected_candidates = int((B.error.str.startswith("InjectedFault")).sum() + (B.error.str.startswith("non-finite")).sum()
                              + (B.status == "timeout").sum())
    handled_candidates = int(((B.status == "failed") & B.error.str.startswith("InjectedFault")).sum()
                             + ((B.status == "failed") & B.error.str.startswith("non-finite")).sum()
                             + ((B.status == "timeout") & B.error.str.contains("timeout_s")).sum())
    faults_injected = injected_candidates + 2  # + one worker SIGKILL + one search-process SIGKILL
    faults_survived = handled_candidates + int(lost == 0 and duplicated == 0) + int(resume_identical)

    print("feeding the bad-input table ...", flush=True)
    outcomes = run_all(work / "bad", table)
    problems = [p for o in outcomes for p in judge(o)]
    clear = sum(not judge(o) for o in outcomes)

    out = {
        "faults_injected": faults_injected, "faults_survived": faults_survived,
        "candidates_expected": expected, "candidates_distinct": int(B.candidate_id.nunique()),
        "candidates_lost": lost, "candidates_duplicated": duplicated,
        "resume_identical": resume_identical, "resumed_from_generation": summary["resumed_from_generation"],
        "reused_from_journal": summary["reused_from_journal"], "results_before_kill": killed_at,
        "failed": summary["n_failed"], "timeout": summary["n_timeout"], "failures": summary["failures"],
        "reference_failures": ref_summary["failures"],
        "bad_inputs_tried": len(outcomes), "bad_inputs_clear_error": clear, "bad_input_problems": problems,
        "seconds": round(time.time() - t_start, 1),
    }
    from rich.console import Console
    from rich.table import Table

    t = Table(title="fault tolerance (targets: lost 0, duplicated 0, resume identical, every bad input clear)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in out.items():
        if k != "bad_input_problems":
            t.add_row(k, json.dumps(v) if isinstance(v, (dict, bool)) else str(v))
    Console().print(t)
    for p in problems:
        print("bad input problem:", p)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    ok = lost == 0 and duplicated == 0 and resume_identical and clear == len(outcomes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

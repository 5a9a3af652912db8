"""Fault-tolerance benchmark: a search on a real local Dask cluster, with faults injected.

What it does, in one run:

1. starts a ``dask scheduler`` and three ``dask worker`` processes on 127.0.0.1;
2. runs a reference search through ``evonas stage search`` (table evaluator on a generated
   NAS-Bench-201-shaped table, generational mode, failing / NaN / hanging candidates injected
   with ``evaluation.faults`` and ``evaluation.timeout_s``), uninterrupted;
3. runs the same search again, SIGKILLs one Dask worker mid-search, SIGKILLs the search
   process (its whole process group) once, and resumes it with ``evonas stage search``;
4. compares the two archives (candidates lost, duplicated, identical after resume);
5. **scheduler loss**: the same search on a fresh cluster whose ``dask scheduler`` is
   SIGKILLed mid-search: the search must stop by itself (no hang), charge no candidate, and
   resume on a new cluster to the reference archive;
6. **disk full**: the same search with its outputs on a small tmpfs (root only; skipped
   otherwise) that fills up mid-search: it must stop with a clear error, keep its last
   checkpoint intact, and resume on a larger disk to the reference archive;
7. **replay under load**: a CoDeepNEAT search with SEP crossover, replayed while other
   processes load every core, must propose the same networks;
8. feeds the bad-input table of ``tests/test_bad_input.py`` to the CLI;
9. with ``--fuzz N``: the property-based fuzzing suite (``tests/test_fuzz.py``: params bytes and
   text, wrong values at every key, ``--set`` strings, ``.npz`` contents, image folders, zips,
   tables, checkpoints) with N examples per property, counting the inputs tried, cleanly
   rejected and accepted (accepted data must then prepare); ``make test`` runs 25;
10. with ``--signals``: real SIGINT / SIGTERM to a real ``evonas`` at Prefect start-up,
   pretraining, Dask evaluation (then a resumed search) and export (``tests/test_signals.py``).

``--only-inputs`` skips steps 1-7 (the cluster), for a record of the inputs and signals alone.

Prints a table; ``--json PATH`` writes the figures. Targets: candidates_lost = 0,
candidates_duplicated = 0, resume_identical = true, scheduler loss and disk full stopped
cleanly and resumed identically, replay identical under load, every bad input a clear error.

    python benchmarks/faults.py [--population 12] [--generations 5] [--fuzz 200] [--signals] [--only-inputs] [--json PATH]
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


def charged_lost(run: Path) -> int:
    """Journaled results recorded as lost evaluations (an infrastructure fault charged to a candidate)."""
    found = list(run.glob("artifacts/search-runs/*/journal.jsonl"))
    if not found:
        return 0
    rows = [json.loads(line) for line in found[0].read_text().splitlines() if line.endswith("}")]
    return sum(1 for r in rows if (r.get("error") or "").startswith("evaluation lost"))


def identical(ref: Path, run: Path) -> bool:
    A, B = populations(ref), populations(run)
    cols = ["candidate_id", "genome", "val_accuracy", "lat_ms", "status", "generation"]
    return bool(len(A) == len(B) and len(A) and A[cols].equals(B[cols]))


def scheduler_loss(table: Path, a, env: dict, work: Path, ref: Path) -> dict:
    """SIGKILL the scheduler mid-search; the search must stop by itself, charge no candidate,
    and resume on a new cluster to the reference archive."""
    run = work / "scheduler_loss"
    run.mkdir()
    cluster = Cluster(3, work)
    try:
        proc = subprocess.Popen(search_args(table, cluster.address, a), cwd=run, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        wait_for(lambda: (run / "artifacts/search/populations/gen_001.parquet").exists(), "generation 1", proc=proc)
        t0 = time.time()
        cluster.scheduler.kill()
        cluster.scheduler.wait()
        try:
            out, _ = proc.communicate(timeout=300)
            stopped_s, code = round(time.time() - t0, 1), proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            stopped_s, code = None, None
    finally:
        cluster.close()
    print(f"scheduler loss: search stopped after {stopped_s} s with exit {code}", flush=True)
    cluster = Cluster(3, work)
    try:
        resumed = subprocess.run(search_args(table, cluster.address, a), cwd=run, env=env, capture_output=True,
                                 text=True)
    finally:
        cluster.close()
    return {"stopped_by_itself_s": stopped_s, "exit": code,
            "message_names_scheduler": "scheduler was lost" in (out or ""),
            "candidates_charged": charged_lost(run), "resumed": resumed.returncode == 0,
            "resume_identical": resumed.returncode == 0 and identical(ref, run)}


def disk_full(table: Path, a, env: dict, work: Path, ref: Path, size_kb: int) -> dict:
    """The search's outputs on a tmpfs of ``size_kb`` that fills up mid-search."""
    if os.geteuid() != 0:
        return {"skipped": "needs root to mount a tmpfs"}
    run = work / "disk_full"
    run.mkdir()
    mnt = run / "artifacts"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        return {"skipped": f"mount failed: {mounted.stderr.strip()}"}
    cluster = Cluster(3, work)
    try:
        full = subprocess.run(search_args(table, cluster.address, a), cwd=run, env=env, capture_output=True, text=True)
        (ck,) = list(mnt.glob("search-runs/*/checkpoint.json")) or [None]
        readable = False
        if ck is not None:
            try:
                readable = bool(json.loads(ck.read_text())["log"]["events"])
            except (OSError, ValueError, KeyError):
                readable = False
        # a bigger disk: copy what is there and resume
        keep = work / "disk_full_copy"
        subprocess.run(["cp", "-a", str(mnt), str(keep)], check=True)
        subprocess.run(["umount", str(mnt)], check=True)
        mnt.rmdir()
        os.replace(keep, mnt)
        resumed = subprocess.run(search_args(table, cluster.address, a), cwd=run, env=env, capture_output=True,
                                 text=True)
    finally:
        cluster.close()
        subprocess.run(["umount", str(mnt)], capture_output=True)
    msg = full.stderr + full.stdout
    return {"size_kb": size_kb, "exit": full.returncode, "message_names_disk": "No space left" in msg,
            "last_checkpoint_readable": readable, "resumed": resumed.returncode == 0,
            "resume_identical": resumed.returncode == 0 and identical(ref, run)}


def replay_under_load() -> dict:
    """A CoDeepNEAT search with SEP crossover, run quietly and again with every core loaded."""
    from nas.config import CoDeepNEATConfig
    from nas.evaluators import LocalPool
    from nas.spaces.codeepneat import CoDeepNEATSpace
    from nas.strategies.codeepneat import CoDeepNEATStrategy
    from tests.analytic import AnalyticGraphEvaluator

    def run() -> list:
        s = CoDeepNEATStrategy(CoDeepNEATSpace(), ["val_accuracy", "params"], {}, 3,
                               CoDeepNEATConfig(module_population=12, blueprint_population=6), 8)
        asked = []
        for _ in range(8):
            batch = s.ask(8)
            asked += [g.key() for g in batch]
            s.tell(LocalPool().evaluate(AnalyticGraphEvaluator(), batch))
        return asked + [json.dumps(s.snapshot(), sort_keys=True)]

    quiet = run()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 2))]
    try:
        loaded = run()
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    return {"networks": len(quiet) - 1, "identical": loaded == quiet}


def inputs_and_signals(work: Path, fuzz: int, signals: bool) -> dict:
    """Steps 9 and 10: the fuzzing suite and the signal tests, run by pytest in a subprocess."""
    out: dict = {}
    if fuzz:
        report = work / "fuzz.json"
        env = {**os.environ, "EVONAS_FUZZ_EXAMPLES": str(fuzz), "EVONAS_FUZZ_REPORT": str(report)}
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
                               str(ROOT / "tests" / "test_fuzz.py")], cwd=ROOT, env=env, capture_output=True,
                              text=True)
        counts = json.loads(report.read_text()) if report.is_file() else {}
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        out["fuzz"] = {"examples_per_property": fuzz, "inputs_tried": counts.get("accepted", 0) + counts.get("rejected", 0),
                       "rejected_cleanly": counts.get("rejected", 0), "accepted_and_prepared": counts.get("accepted", 0),
                       "properties_failed": 0 if proc.returncode == 0 else tail, "pytest": tail,
                       "seconds": round(time.time() - t0, 1)}
        print(f"fuzzing: {out['fuzz']}", flush=True)
    if signals:
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                               str(ROOT / "tests" / "test_signals.py")], cwd=ROOT, capture_output=True, text=True)
        lines = proc.stdout.strip().splitlines()
        out["signals"] = {"cases": ["SIGINT to the group at Prefect start-up", "SIGINT to the group during pretraining",
                                    "SIGTERM to the process during Dask evaluation, then the search resumes",
                                    "SIGINT to the group during export"],
                          "all_clean": proc.returncode == 0, "pytest": lines[-1] if lines else "",
                          "seconds": round(time.time() - t0, 1)}
        if proc.returncode != 0:
            out["signals"]["output_tail"] = proc.stdout[-3000:]
        print(f"signals: {out['signals']['pytest']}", flush=True)
    return out


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
    ap.add_argument("--disk-kb", type=int, default=48, help="tmpfs size for the disk-full case")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--fuzz", type=int, default=0, help="also run the fuzzing suite with this many examples per property")
    ap.add_argument("--signals", action="store_true", help="also send real signals to real runs (tests/test_signals.py)")
    ap.add_argument("--only-inputs", action="store_true", help="skip the cluster faults: bad inputs, --fuzz, --signals")
    a = ap.parse_args()

    from tests.conftest import make_synthetic
    from tests.test_bad_input import judge, run_all

    work = a.keep or Path(tempfile.mkdtemp(prefix="evonas-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    table = make_synthetic(work / "table.csv")
    if a.only_inputs:
        t_start = time.time()
        outcomes = run_all(work / "bad", table, workers=1)  # one at a time: the seconds a user waits
        problems = [p for o in outcomes for p in judge(o)]
        out = {"bad_inputs_tried": len(outcomes), "bad_inputs_clear_error": sum(not judge(o) for o in outcomes),
               "bad_input_problems": problems, "bad_input_max_seconds": round(max(o[3] for o in outcomes), 2),
               "bad_input_cases": [o[0] for o in outcomes], **inputs_and_signals(work, a.fuzz, a.signals),
               "seconds": round(time.time() - t_start, 1)}
        print(json.dumps(out, indent=2))
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(out, indent=2) + "\n")
        ok = not problems and (not a.fuzz or out["fuzz"]["properties_failed"] == 0) and \
            (not a.signals or out["signals"]["all_clean"])
        return 0 if ok else 1
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

    print("scheduler loss ...", flush=True)
    sched = scheduler_loss(table, a, env, work, ref)
    print("disk full ...", flush=True)
    disk = disk_full(table, a, env, work, ref, a.disk_kb)
    print("replay under load ...", flush=True)
    replay = replay_under_load()

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
        "scheduler_loss": sched, "disk_full": disk, "replay_under_load": replay,
        "bad_inputs_tried": len(outcomes), "bad_inputs_clear_error": clear, "bad_input_problems": problems,
        **inputs_and_signals(work, a.fuzz, a.signals),
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
    sched_ok = sched["stopped_by_itself_s"] is not None and sched["candidates_charged"] == 0 and sched["resume_identical"]
    disk_ok = "skipped" in disk or (disk["exit"] != 0 and disk["last_checkpoint_readable"] and disk["resume_identical"])
    ok = lost == 0 and duplicated == 0 and resume_identical and clear == len(outcomes) and sched_ok and disk_ok \
        and replay["identical"] and (not a.fuzz or out["fuzz"]["properties_failed"] == 0) \
        and (not a.signals or out["signals"]["all_clean"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

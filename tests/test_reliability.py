"""Reliability: resume after SIGKILL, lost Dask workers, failing candidates, checkpoints.

The integration tests use real processes: the ``evonas`` CLI killed with SIGKILL (its whole
process group, Dask workers included), a ``dask scheduler`` and ``dask worker`` processes
on 127.0.0.1 with one worker SIGKILLed mid-search.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas.checkpoint import Checkpointer, CheckpointError, RecordingStrategy, fingerprint, replay
from nas.evaluators.base import EvaluationTimeout, evaluate, sleep
from nas.evaluators.faults import FaultInjectingEvaluator, InjectedFault
from nas.genome import EvaluationResult, Genome
from tests.conftest import ROOT, free_port, synthetic_table_sets, tiny_config

EXE = str(Path(sys.executable).parent / "evonas")


# ----------------------------------------------------------------------------- failing candidates


@dataclass(frozen=True)
class Fn:
    """An evaluator whose metrics come from ``kind``."""

    kind: str
    base_seed: int = 0

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        if self.kind == "raise":
            raise ValueError("broken candidate")
        if self.kind == "nan":
            return {"val_accuracy": float("nan")}
        if self.kind == "inf":
            return {"val_accuracy": 0.5, "params": float("inf")}
        if self.kind == "oom":
            raise MemoryError("cannot allocate 40 GiB")
        if self.kind == "diverge":
            import torch

            from nas.training import train

            rng = np.random.default_rng(seed)
            x = rng.normal(size=(64, 1, 4, 4)).astype(np.float32) * 1e3
            y = rng.integers(0, 3, size=64)
            net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
            train(net, x, y, epochs=20, lr=1e9, batch_size=16, rng=rng)  # explodes
            return {"val_accuracy": 0.5}
        if self.kind == "slow_cooperative":
            sleep(30)
        if self.kind == "slow_stuck":
            time.sleep(60)  # never checks the deadline
        return {"val_accuracy": 0.9}


G = Genome((1, 2, 3), "nb201")


@pytest.mark.parametrize("kind, status, reason", [
    ("raise", "failed", "ValueError: broken candidate"),
    ("nan", "failed", "non-finite metric(s) ['val_accuracy']"),
    ("inf", "failed", "non-finite metric(s) ['params']"),
    ("oom", "failed", "MemoryError: cannot allocate"),
    ("diverge", "failed", "DivergedError: loss became"),
    ("ok", "ok", None),
])
def test_failing_candidates_are_recorded_with_status_and_reason(kind, status, reason):
    r = evaluate(Fn(kind), G)
    assert r.status == status
    if reason:
        assert r.error.startswith(reason), r.error
    else:
        assert r.error is None and r.metrics == {"val_accuracy": 0.9}


@pytest.mark.parametrize("kind", ["slow_cooperative", "slow_stuck"])
def test_timeout_returns_at_the_deadline(kind):
    t0 = time.perf_counter()
    r = evaluate(Fn(kind), G, timeout_s=0.5)
    took = time.perf_counter() - t0
    assert r.status == "timeout" and "timeout" in r.error.lower()
    # the candidate would run 30 or 60 s: it was stopped at its deadline (what `took` adds to the
    # 0.5 s is the evaluation process's start-up, seconds when other tests load the machine)
    assert took < 15.0
    assert evaluate(Fn("ok"), G, timeout_s=5).status == "ok"


def test_a_cooperative_evaluation_stops_at_its_deadline():
    """The helper thread of a timed-out training loop stops too (the worker is freed)."""
    before = threading.active_count()
    evaluate(Fn("slow_cooperative"), G, timeout_s=0.2)
    time.sleep(0.3)
    assert threading.active_count() == before
    with pytest.raises(EvaluationTimeout):
        from nas.evaluators import base

        base._local.deadline = time.monotonic() - 1
        try:
            base.check_deadline()
        finally:
            base._local.deadline = None
    # a loop that sees its deadline before the caller stops waiting records the same message
    # as the caller would (naming the setting)
    from nas.evaluators.base import _metrics

    class PastDeadline:
        def metrics(self, genome, seed):
            from nas.evaluators import base

            base._local.deadline, base._local.timeout_s = time.monotonic() - 1, 0.5
            try:
                base.check_deadline()
            finally:
                base._local.deadline = None

    assert _metrics(PastDeadline(), G, 0) == ({}, "timeout", "evaluation exceeded evaluation.timeout_s = 0.5 s")


def test_fault_injection_is_seeded_by_candidate():
    ev = FaultInjectingEvaluator(Fn("ok"), error_rate=0.2, nan_rate=0.2, hang_rate=0.0)
    genomes = [Genome((a, b, c), "nb201") for a in range(5) for b in range(5) for c in range(5)]
    first = [evaluate(ev, g).status for g in genomes]
    assert first == [evaluate(ev, g).status for g in genomes]  # the same candidates fail every time
    share = first.count("failed") / len(first)
    assert 0.25 < share < 0.55
    results = [evaluate(ev, g) for g in genomes]
    raised = [r for r in results if r.error and r.error.startswith("InjectedFault")]
    assert raised and any(r.error and r.error.startswith("non-finite") for r in results)
    with pytest.raises(InjectedFault):
        ev.metrics(raised[0].genome, raised[0].seed)


@pytest.mark.integration
def test_a_candidate_that_keeps_killing_workers_is_recorded_failed_not_lost():
    """Dask retries a task whose worker died; when it gives up (KilledWorker) the candidate
    is recorded as failed, with the reason, and every candidate still has exactly one result.
    (A task that merely shared the dying worker may be retried too; Dask counts that against
    it, so it is either ok or failed for the same reason, never missing.)"""
    import dask
    import distributed  # noqa: F401  (its config defaults must exist before dask.config.set overlays them)

    from nas.evaluators.dask import DaskPool

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with DaskPool(workers=2) as pool:
            genomes = [Genome((i, 0, 0), "nb201") for i in range(4)]
            results = list(pool.iter_evaluate(ExitOn(genomes[1]), genomes))
    by = {r.genome: r for r in results}
    assert len(results) == 4 and set(by) == set(genomes)
    assert by[genomes[1]].status == "failed" and "evaluation lost" in by[genomes[1]].error
    assert "KilledWorker" in by[genomes[1]].error
    others = [by[g] for g in genomes if g != genomes[1]]
    assert any(r.ok for r in others)
    assert all(r.ok or "KilledWorker" in r.error for r in others)


@pytest.mark.integration
def test_a_chunk_whose_worker_dies_is_split_and_only_the_killer_fails():
    """Several candidates per Dask task: when Dask gives up on a chunk (KilledWorker), each of
    its candidates runs again alone, so the one that kills workers is recorded failed and the
    rest of its chunk are evaluated, each exactly once."""
    import dask
    import distributed  # noqa: F401

    from nas.evaluators.dask import DaskPool

    genomes = [Genome((i, 0, 0), "nb201") for i in range(40)]
    # saturation 1.0: a worker holds only the task it runs, so a dying worker takes no bystander with it
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}):
        with DaskPool(workers=2, chunk_size=5) as pool:
            assert pool.chunk_for(len(genomes)) == 5
            results = list(pool.iter_evaluate(ExitOn(genomes[7]), genomes))
    by = {r.genome: r for r in results}
    assert len(results) == 40 and set(by) == set(genomes)
    assert by[genomes[7]].status == "failed" and "KilledWorker" in by[genomes[7]].error
    mates = [by[genomes[i]] for i in (5, 6, 8, 9)]  # its chunk's other candidates, split off and run alone
    assert sum(r.ok for r in mates) >= 3, [r.error for r in mates]
    assert all(by[g].ok or "KilledWorker" in by[g].error for g in genomes if g != genomes[7])


@dataclass(frozen=True)
class ExitOn:
    bad: Genome
    base_seed: int = 0

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        if genome == self.bad:
            os._exit(1)  # the worker process dies, as under the OOM killer
        return {"val_accuracy": 0.5}


# ----------------------------------------------------------------------------- checkpoints


def _table_sets(table: Path, strategy: str = "nsga2", extra: tuple[str, ...] = ()) -> list[str]:
    return [*synthetic_table_sets(table), f"search.strategy={strategy}", "search.population=6",
            "search.generations=4", "evaluation.table.sim_seconds=0.15", "evaluation.workers=2", *extra]


def test_checkpoint_replay_restores_the_strategy(synthetic, tmp_path):
    from nas.factory import build_strategy
    from nas.spaces.nb201 import NB201Space

    from nas.factory import build_evaluator

    cfg = tiny_config(tmp_path, _table_sets(synthetic, "thompson"))
    space = NB201Space()
    ev = build_evaluator(cfg)
    rec = RecordingStrategy(build_strategy(cfg, space, []))
    for _ in range(3):
        rec.tell([evaluate(ev, g) for g in rec.ask(4)])
    ck = Checkpointer(tmp_path / "ck", fingerprint(cfg))
    ck.save(rec, {"next_generation": 3, "generation_log": []})
    doc = ck.load()
    again = replay(build_strategy(cfg, space, []), doc["events"], doc["results"], doc["rng_state"])
    assert again.ask(4) == rec.ask(4)  # the restored strategy proposes what the original would
    # a strategy that proposes differently (other seed) is refused, not silently continued
    other = tiny_config(tmp_path, _table_sets(synthetic, "thompson") + ["seed=1"])
    with pytest.raises(CheckpointError, match="proposed different candidates"):
        replay(build_strategy(other, space, []), doc["events"], doc["results"], doc["rng_state"])


def test_checkpoint_from_other_params_is_refused_naming_the_keys(synthetic, tmp_path):
    cfg = tiny_config(tmp_path, _table_sets(synthetic))
    Checkpointer(tmp_path / "ck", fingerprint(cfg)).save(RecordingStrategy(object()), {"next_generation": 0,
                                                                                        "generation_log": []})
    changed = tiny_config(tmp_path, _table_sets(synthetic, extra=("search.population=7",)))
    with pytest.raises(CheckpointError, match=r"search\.population: checkpoint 6, params 7"):
        Checkpointer(tmp_path / "ck", fingerprint(changed)).load()
    # another search seed is another search: resuming it from this one's checkpoint is refused
    reseeded = tiny_config(tmp_path, _table_sets(synthetic, extra=("search.seed=3",)))
    with pytest.raises(CheckpointError, match=r"search\.seed: checkpoint None, params 3"):
        Checkpointer(tmp_path / "ck", fingerprint(reseeded)).load()
    # what does not change the trajectory may change: more generations extend a search
    longer = tiny_config(tmp_path, _table_sets(synthetic, extra=("search.generations=9", "evaluation.workers=3")))
    Checkpointer(tmp_path / "ck", fingerprint(longer)).load()


def test_a_fingerprint_reads_back_equal_from_json(tmp_path):
    """Tuple-valued params (data.omniglot_drawers) come back from checkpoint.json as lists: the
    fingerprint is kept in that form, or no run with them could ever resume. Where candidates are
    evaluated (evaluation.chunk_size) is left out."""
    from nas.config import load_config

    cfg = load_config(ROOT / "params.yaml", [f"data.out_dir={tmp_path / 'd'}", f"supernet.out_dir={tmp_path / 's'}",
                                             f"surrogate.out_dir={tmp_path / 'g'}"])
    fp = fingerprint(cfg)
    assert fp["data"]["omniglot_drawers"] == [12, 4, 4] and json.loads(json.dumps(fp)) == fp
    assert fingerprint(cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"chunk_size": 8})})) == fp
    ck = Checkpointer(tmp_path / "ck", fp)
    ck.start_fresh()
    ck.save(RecordingStrategy(_Counting()), {"next_generation": 0, "generation_log": []})
    assert Checkpointer(tmp_path / "ck", fingerprint(cfg)).load()["next_generation"] == 0


def test_truncated_checkpoint_is_a_clear_error(synthetic, tmp_path):
    cfg = tiny_config(tmp_path, _table_sets(synthetic))
    ck = Checkpointer(tmp_path / "ck", fingerprint(cfg))
    ck.save(RecordingStrategy(object()), {"next_generation": 0, "generation_log": []})
    text = ck.path.read_text()
    ck.path.write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ck.load()


class _Counting:
    """A strategy that proposes genomes (n, 0, ...) in order and ignores what it is told."""

    def __init__(self):
        self.n = 0

    def ask(self, n: int) -> list[Genome]:
        self.n += n
        return [Genome((i, 0, 0), "nb201") for i in range(self.n - n, self.n)]

    def tell(self, results) -> None:
        pass


def _generation(rec: RecordingStrategy, n: int = 3) -> None:
    rec.tell([EvaluationResult(g, {"val_accuracy": 0.5 + g.values[0] / 100}, seed=g.values[0]) for g in rec.ask(n)])


def test_checkpoint_saves_append_what_is_new_and_a_cut_short_save_is_dropped(synthetic, tmp_path):
    """A save appends only the calls and results since the last one (checkpoint.json stays small),
    lines of a save cut short are ignored on load and dropped at the next save, and a log that
    lost covered lines is a clear error."""
    cfg = tiny_config(tmp_path, _table_sets(synthetic))
    ck = Checkpointer(tmp_path / "ck", fingerprint(cfg))
    ck.start_fresh()
    rec = RecordingStrategy(_Counting())
    _generation(rec)
    ck.save(rec, {"next_generation": 1, "generation_log": []})
    events, results, small = ck.events_path.read_bytes(), ck.results_path.read_bytes(), ck.path.stat().st_size
    for _ in range(20):
        _generation(rec)
        ck.save(rec, {"next_generation": 1, "generation_log": []})
    assert ck.events_path.read_bytes().startswith(events) and ck.results_path.read_bytes().startswith(results)
    assert len(ck.events_path.read_bytes().splitlines()) == 42 and len(ck.results_path.read_bytes().splitlines()) == 63
    assert ck.path.stat().st_size < small + 100  # the results live in the log, not in checkpoint.json
    doc = Checkpointer(tmp_path / "ck", fingerprint(cfg)).load()
    assert len(doc["events"]) == 42 and len(doc["results"]) == 63 and doc["events"] == rec.events
    assert doc["results"] == rec.results

    # a save cut short: a whole line and half a line past what checkpoint.json covers
    for path in (ck.events_path, ck.results_path):
        with open(path, "ab") as f:
            f.write(b'["tell",["zzz"]]\n["ask",3,[[1,')
    again = Checkpointer(tmp_path / "ck", fingerprint(cfg))
    doc = again.load()
    assert len(doc["events"]) == 42 and len(doc["results"]) == 63
    resumed = replay(_Counting(), doc["events"], doc["results"], None)
    _generation(resumed)
    again.save(resumed, {"next_generation": 2, "generation_log": []})
    doc = Checkpointer(tmp_path / "ck", fingerprint(cfg)).load()
    assert doc["events"] == resumed.events and len(doc["events"]) == 44 and len(doc["results"]) == 66
    assert len(ck.events_path.read_bytes().splitlines()) == 44

    lines = ck.results_path.read_bytes().splitlines(keepends=True)
    ck.results_path.write_bytes(b"".join(lines[:-2]))  # covered results lost
    with pytest.raises(CheckpointError, match="64 complete lines of the 66 results.*truncated or corrupt"):
        Checkpointer(tmp_path / "ck", fingerprint(cfg)).load()


def _populations(root: Path) -> pd.DataFrame:
    files = sorted((root / "artifacts/search/populations").glob("gen_*.parquet"))
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return df[["candidate_id", "genome", "val_accuracy", "lat_ms", "status", "generation"]]


def _search(root: Path, sets: list[str], *flags: str, kill_after: str | None = None,
            api: str | None = None) -> subprocess.CompletedProcess | None:
    """``evonas stage search`` in ``root`` (against the Prefect server at ``api``, else Prefect's
    temporary one); with ``kill_after`` (a file under artifacts/search), SIGKILL its whole process
    group once that file appears."""
    root.mkdir(exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(root / ".prefect")}
    if api:
        env["PREFECT_API_URL"] = api
    args = [EXE, "stage", "search", "--params", str(ROOT / "params.yaml"), *flags] + [a for s in sets for a in ("--set", s)]
    if kill_after is None:
        return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    target = root / "artifacts/search" / kill_after
    deadline = time.time() + 300
    while not target.exists():
        assert proc.poll() is None, "the search ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.4)  # a few results of the next generation reach the journal
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return None


@pytest.mark.integration
def test_sigkill_then_resume_ends_exactly_like_an_uninterrupted_run(synthetic, tmp_path, runs_api):
    """pymoo's NSGA-II (the strategy with the most state outside our own generator); every
    strategy is replayed the same way (see test_checkpoint_replay_restores_the_strategy). The
    checkpoint is written every 2 generations, so the resume also re-asks the generation closed
    after it and takes that generation's results from the journal."""
    from nas import stages

    sets = _table_sets(synthetic, "nsga2", ("search.checkpoint_every=2",))
    ref_summary = stages.run_search(tiny_config(tmp_path / "ref", sets))  # uninterrupted, in this process

    crash = tmp_path / "crash"
    _search(crash, sets, kill_after="populations/gen_002.parquet", api=runs_api)
    (ck,) = crash.glob("artifacts/search-runs/*/checkpoint.json")  # the run folder, outside the outputs
    assert not (crash / "artifacts/search/summary.json").exists()  # it really died mid-search

    # resuming with other search params is refused, naming the difference, and the checkpoint
    # is left as it was
    before = ck.read_bytes()
    bad = _search(crash, sets + ["search.population=7"], "--resume", api=runs_api)
    assert bad.returncode == 2 and "search.population" in bad.stderr and "Traceback" not in bad.stderr
    assert ck.read_bytes() == before

    done = _search(crash, sets, "--resume", api=runs_api)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from" in done.stdout + done.stderr
    summary = json.loads((crash / "artifacts/search/summary.json").read_text())
    assert summary["resumed_from_generation"] >= 1
    assert summary["reused_from_journal"] >= 6, "the generation after the checkpoint came from the journal"
    pd.testing.assert_frame_equal(_populations(crash), _populations(tmp_path / "ref"))
    assert summary["final_hypervolume"] == pytest.approx(ref_summary["final_hypervolume"], abs=1e-12)


@pytest.mark.integration
def test_async_resume_repeats_no_completed_evaluation(synthetic, tmp_path, runs_api):
    sets = _table_sets(synthetic, "aging", ("search.mode=async", "search.async.in_flight=4", "search.async.batch=2",
                                              "search.async.budget=24", "evaluation.table.sim_seconds=0.2"))
    root = tmp_path / "run"
    _search(root, sets, kill_after="populations/gen_003.parquet", api=runs_api)
    (journal_path,) = root.glob("artifacts/search-runs/*/journal.jsonl")
    journal = [json.loads(line) for line in journal_path.read_text().splitlines() if line.endswith("}")]
    done_before = {tuple(r["genome"]): r["finished_at"] for r in journal}
    proc = _search(root, sets, api=runs_api)  # resume is the default when a compatible checkpoint exists
    assert proc.returncode == 0, proc.stderr[-2000:]
    pops = pd.concat([pd.read_parquet(f) for f in sorted((root / "artifacts/search/populations").glob("gen_*.parquet"))])
    assert len(pops) == 24 and pops.candidate_id.is_unique  # none lost, none twice
    finished = {tuple(json.loads(g)): t for g, t in zip(pops.genome, pops.finished_at)}
    for g, t in done_before.items():  # evaluated before the crash: kept, not evaluated again
        if g in finished:  # (absolute: a relative tolerance on epoch seconds would allow half an hour)
            assert finished[g] == pytest.approx(t, abs=1e-3)
    summary = json.loads((root / "artifacts/search/summary.json").read_text())
    assert summary["n_evaluated"] == 24 and summary["resumed_from_generation"] >= 3
    # the resumed process's own evaluations: what its workers were busy with, and all its utilisation counts
    assert summary["evaluated_this_run"] == sum(g not in done_before for g in finished) < 24
    assert 0 < summary["worker_utilization"] <= 1.0 + 1e-6


# ----------------------------------------------------------------------------- lost workers



def _wait_port(port: int, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.mark.integration
def test_a_worker_killed_mid_search_costs_only_time(synthetic, tmp_path):
    """A real ``dask scheduler`` and two ``dask worker`` processes; one worker is SIGKILLed
    while it evaluates. Dask reruns its candidates on the other; none is lost, none counted
    twice, none failed, and the search finishes."""
    from nas import stages

    addr, procs = _start_cluster(2)
    workers = procs[1:]
    try:
        cfg = tiny_config(tmp_path, _table_sets(synthetic, "aging", (f"evaluation.scheduler_address={addr}",
                                                                      "evaluation.table.sim_seconds=0.3",
                                                                      "search.generations=3")))
        from nas.checkpoint import search_checkpointer

        journal = search_checkpointer(cfg).journal_path

        def killer():
            while not journal.exists() or len(journal.read_text().splitlines()) < 8:
                time.sleep(0.05)
            workers[0].send_signal(signal.SIGKILL)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        summary = stages.run_search(cfg)
        t.join(5)
        assert workers[0].poll() is not None  # it was killed during the search
        pops = pd.concat([pd.read_parquet(f) for f in sorted(Path(cfg.search.out_dir, "populations").glob("gen_*.parquet"))])
        assert len(pops) == 6 * 4 and pops.candidate_id.is_unique
        assert summary["n_evaluated"] == 24 and summary["n_failed"] == 0 and summary["n_timeout"] == 0
        assert (pops.status == "ok").all()
        assert len(set(pops.worker)) == 2  # both worked, one of them until it was killed
    finally:
        _stop(procs)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.integration
def test_pipeline_survives_failing_nan_and_hanging_candidates(synthetic, tmp_path, runs_api):
    sets = _table_sets(synthetic, "thompson", ("evaluation.faults.error_rate=0.15", "evaluation.faults.nan_rate=0.1",
                                               "evaluation.faults.hang_rate=0.1", "evaluation.faults.hang_seconds=30",
                                               "evaluation.timeout_s=1", "evaluation.table.sim_seconds=0.05"))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / ".prefect"), "PREFECT_API_URL": runs_api}
    proc = subprocess.run([EXE, "run", "--params", str(ROOT / "params.yaml")] + [a for s in sets for a in ("--set", s)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics["n_evaluated"] == 30
    assert metrics["n_failed"] > 0 and metrics["n_timeout"] > 0
    assert metrics["failures"].get("InjectedFault", 0) > 0 and metrics["failures"].get("non-finite metric", 0) > 0
    assert metrics["failures"]["timeout"] == metrics["n_timeout"]
    front = pd.read_csv(tmp_path / "artifacts/select/pareto.csv")
    pops = pd.concat([pd.read_parquet(f) for f in (tmp_path / "artifacts/search/populations").glob("gen_*.parquet")])
    bad = set(pops[pops.status != "ok"].candidate_id)
    assert bad and not bad & set(front.candidate_id)  # failed candidates are never on the front
    assert pops[pops.status == "timeout"].error.str.contains("timeout_s").all()


# ----------------------------------------------------------------------------- Prefect


def test_only_transient_failures_are_retried():
    from prefect.states import Failed

    from nas.config import ConfigError
    from nas.evaluators.dask import ClusterError
    from tasks.stages import transient

    def retried(exc: BaseException) -> bool:
        return transient(None, None, Failed(data=exc))

    assert retried(ClusterError("scheduler gone")) and retried(ConnectionResetError()) and retried(TimeoutError())
    assert not retried(ConfigError("bad key")) and not retried(FileNotFoundError("x"))
    assert not retried(RuntimeError("no feasible candidate")) and not retried(ValueError("bad"))
    import errno

    assert not retried(OSError(errno.ENOSPC, "No space left on device"))  # a full disk stays full
    assert not retried(OSError(errno.EROFS, "Read-only file system"))


@pytest.mark.integration
def test_a_failing_stage_fails_its_flow_run_with_the_cause(synthetic, tmp_path):
    """Every candidate fails: the search stage completes (failures are results), selection
    then has nothing feasible; the select sub-flow and the parent pipeline run end Failed with
    that cause as their state message (what the Prefect UI shows)."""
    from prefect.client.orchestration import get_client

    from flows.pipeline import pipeline_flow

    cfg = tiny_config(tmp_path, _table_sets(synthetic, "random", ("evaluation.faults.error_rate=1.0",
                                                                   "evaluation.table.sim_seconds=0",
                                                                   "search.generations=1")))
    state = pipeline_flow(cfg, return_state=True)
    assert state.is_failed()
    assert "no feasible successfully evaluated candidate" in state.message
    summary = json.loads((Path(cfg.search.out_dir) / "summary.json").read_text())
    assert summary["n_failed"] == summary["n_evaluated"] == 12 and summary["failures"] == {"InjectedFault": 12}

    async def sub_runs():
        async with get_client() as client:
            run = await client.read_flow_run(state.state_details.flow_run_id)
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

            return run, await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))

    import asyncio

    parent, subs = asyncio.run(sub_runs())
    by = {r.name.split("-")[0]: r for r in subs}
    assert by["search"].state.is_completed() and by["select"].state.is_failed()
    assert "no feasible" in by["select"].state.message


def _unshippable():
    raise ModuleNotFoundError("No module named 'a_module_the_workers_lack'")


class Unshippable:
    """An evaluator that pickles on the client but cannot be unpickled on a worker (as when the
    workers run another version of the code): a fault of the cluster, not of any candidate."""

    base_seed = 0

    def metrics(self, genome, seed):  # pragma: no cover - never runs
        return {"val_accuracy": 1.0}

    def __reduce__(self):
        return (_unshippable, ())


def test_infrastructure_faults_are_not_charged_to_candidates():
    """A task the workers cannot unpickle is submitted again a bounded number of times and then
    stops the search with InfrastructureError; no candidate is recorded as failed."""
    from nas.evaluators.base import InfrastructureError
    from nas.evaluators.dask import RESUBMITS, DaskPool
    from nas.spaces.nb201 import NB201Space

    genome = NB201Space().sample(np.random.default_rng(0))
    with DaskPool(workers=1) as pool:
        q = pool.queue()
        q.submit(Unshippable(), genome)
        with pytest.raises(InfrastructureError, match=f"failed {RESUBMITS + 1} times.*outside the candidate"):
            next(q)
        q = pool.queue()  # a chunk is split after its first fault; each candidate then counts its own
        q.submit_chunk(Unshippable(), [genome, genome])
        with pytest.raises(InfrastructureError, match=f"evaluating {genome.key()} failed {RESUBMITS + 1} times"):
            next(q)


def test_only_the_candidates_own_faults_fail_it_on_the_local_pool():
    """Its exceptions and NaN metrics are the candidate's: failed results, the search goes on."""
    from nas.evaluators import LocalPool
    from nas.spaces.nb201 import NB201Space

    class Raises:
        base_seed = 0

        def metrics(self, genome, seed):
            raise RuntimeError("diverged")

    g = NB201Space().sample(np.random.default_rng(1))
    [r] = LocalPool().evaluate(Raises(), [g])
    assert r.status == "failed" and "diverged" in r.error


@dataclass
class PidThenHang:
    """Writes its process id (and a grandchild's) to ``path``, then never returns and never
    looks at its deadline."""

    path: str
    base_seed: int = 0

    def metrics(self, genome, seed):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(self.path).write_text(f"{os.getpid()} {child.pid}")
        while True:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers signal 0; it has stopped computing
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_hanging_candidates_process_is_gone_after_its_timeout(tmp_path):
    """Timed-out candidates are really stopped (issue 17): the evaluation ran in a child
    process that is killed at the deadline with everything it started."""
    marker = tmp_path / "pids"
    r = evaluate(PidThenHang(str(marker)), G, timeout_s=3)
    returned = time.time()
    assert r.status == "timeout" and "evaluation.timeout_s = 3 s" in r.error
    # the candidate loops for ever, so returning at all shows the deadline; the clock starts once
    # the child is ready (its start-up, long on a loaded machine, is not the candidate's), and the
    # marker is written after that, so the candidate's own run ends within the timeout plus the kill
    ran = returned - marker.stat().st_mtime
    assert ran < 3 + 2, f"the candidate ran {ran:.1f} s past a 3 s timeout"
    pids = [int(x) for x in marker.read_text().split()]
    time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "the timed-out evaluation (or its child) is still running"
    assert threading.active_count() >= 1 and evaluate(Fn("ok"), G, timeout_s=5).status == "ok"


def _start_cluster(n_workers: int) -> tuple[str, list[subprocess.Popen]]:
    dask_exe = str(Path(sys.executable).parent / "dask")
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([dask_exe, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    _wait_port(port)
    procs += [subprocess.Popen([dask_exe, "worker", addr, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                "--host", "127.0.0.1"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) for _ in range(n_workers)]
    from distributed import Client

    with Client(addr, timeout=30) as c:
        c.wait_for_workers(n_workers, timeout=60)
    return addr, procs


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.integration
def test_a_killed_scheduler_stops_the_search_resumably_and_charges_no_candidate(synthetic, tmp_path):
    """Issue 17: SIGKILL the `dask scheduler` mid-search. The search stops by itself with
    InfrastructureError (no hang), no candidate is recorded as lost, and the search resumes on
    a new cluster to the archive of an uninterrupted run."""
    from nas import stages
    from nas.checkpoint import search_checkpointer
    from nas.evaluators.base import InfrastructureError

    extra = ("evaluation.table.sim_seconds=0.15", "search.generations=2")
    ref = stages.run_search(tiny_config(tmp_path / "ref", _table_sets(synthetic, "aging", extra)))
    addr, procs = _start_cluster(2)
    try:
        cfg = tiny_config(tmp_path / "run", _table_sets(synthetic, "aging", (*extra, f"evaluation.scheduler_address={addr}")))
        gen1 = Path(cfg.search.out_dir) / "populations/gen_001.parquet"

        def killer():
            while not gen1.exists():
                time.sleep(0.05)
            procs[0].send_signal(signal.SIGKILL)

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        t0 = time.time()
        with pytest.raises(InfrastructureError, match="scheduler was lost"):
            stages.run_search(cfg)
        assert time.time() - t0 < 240
    finally:
        _stop(procs)
    journal = [json.loads(line) for line in search_checkpointer(cfg).journal_path.read_text().splitlines()
               if line.endswith("}")]
    assert journal and not any((r.get("error") or "").startswith("evaluation lost") for r in journal)
    addr, procs = _start_cluster(2)
    try:
        cfg = tiny_config(tmp_path / "run", _table_sets(synthetic, "aging", (*extra, f"evaluation.scheduler_address={addr}")))
        done = stages.run_search(cfg, resume=None)
    finally:
        _stop(procs)
    assert done["resumed_from_generation"] >= 1 and done["final_hypervolume"] == pytest.approx(ref["final_hypervolume"])
    pd.testing.assert_frame_equal(_populations(tmp_path / "run"), _populations(tmp_path / "ref"))


def test_graph_genomes_are_held_as_spec_text_and_logged_as_the_same_json(tmp_path):
    """An ask of graph genomes (WANN, CoDeepNEAT) holds each as its canonical spec text, not as
    parsed JSON (a long WANN search's parsed genomes took gigabytes), and the events log still
    holds them as JSON objects: the log's format is what it was, and loading gives back exactly
    what was recorded, in order, so a resume replays and finds the outstanding genomes."""
    from nas.checkpoint import _event_line, _parse_event, asked
    from nas.genome import canonical_json

    spec = {"outputs": 1, "conns": [[0, 3], [1, 3]], "hidden": [], "inputs": 2, "out_act": "abs"}
    g = Genome((), "wann", canonical_json(spec))
    ev = ["ask", 1, [asked(g)], "wann"]
    assert ev[2] == [g.spec] and isinstance(ev[2][0], str)
    line = _event_line(ev)
    assert json.loads(line) == ["ask", 1, [spec], "wann"] == json.loads(json.dumps(["ask", 1, [g.payload()], "wann"]))
    assert _parse_event(line.encode()) == ev
    assert _event_line(["ask", 2, [asked(Genome((1, 2, 3), "nb201"))], "nb201"]) == '["ask",2,[[1,2,3]],"nb201"]'

    rec = RecordingStrategy(type("Graphs", (), {"ask": lambda self, n: [g], "tell": lambda self, rs: None})())
    rec.ask(1)
    assert rec.outstanding() == [g]
    ck = Checkpointer(tmp_path / "ck", {"k": 1})
    ck.start_fresh()
    ck.save(rec, {"next_generation": 0, "generation_log": []})
    assert ck.events_path.read_text() == line + "\n"
    doc = Checkpointer(tmp_path / "ck", {"k": 1}).load()
    assert doc["events"] == rec.events
    assert replay(type("Graphs", (), {"ask": lambda self, n: [g], "tell": lambda self, rs: None})(),
                  doc["events"], doc["results"], None).outstanding() == [g]

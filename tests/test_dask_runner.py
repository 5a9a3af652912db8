"""The runner and the inherited evaluator on a real Dask LocalCluster (worker processes)."""

import numpy as np
import pytest

from nas.evaluators.dask import ClusterError, DaskPool
from nas.factory import build_evaluator, build_space, build_strategy
from nas.runners import GenerationalRunner, HypervolumeTracker, read_populations
from nas import stages

pytestmark = pytest.mark.integration


def test_generational_search_on_a_local_cluster(trained, tmp_path):
    cfg = trained
    space = build_space(cfg)
    strategy = build_strategy(cfg.model_copy(update={"search": cfg.search.model_copy(update={"strategy": "nsga2"})}),
                              space)
    evaluator = build_evaluator(cfg)
    tracker = HypervolumeTracker(cfg.search.objectives, {}, *stages.objective_bounds(cfg.search.objectives, []))
    with DaskPool(workers=2) as pool:
        assert pool.n_workers == 2
        runner = GenerationalRunner(strategy, pool, evaluator, 6, 2, tmp_path, tracker)
        results = runner.run()
        # per-candidate seeds: the same genome evaluated again, anywhere, gives the same accuracy
        again = pool.evaluate(evaluator, [r.genome for r in results[:4]])
    assert len(results) == len({r.genome for r in results}) > 6
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    workers = {r.worker for r in results}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers)
    first = {r.genome: r.metrics["val_accuracy"] for r in results[:4]}
    assert {r.genome: r.metrics["val_accuracy"] for r in again} == first
    files = sorted((tmp_path / "populations").glob("gen_*.parquet"))
    assert [f.name for f in files] == ["gen_000.parquet", "gen_001.parquet", "gen_002.parquet"]
    df = read_populations(tmp_path / "populations")
    for col in ("candidate_id", "genome", "val_accuracy", "params", "flops", "latency_ms", "status",
                "eval_seconds", "worker", "generation", "seed"):
        assert col in df.columns
    assert len(df) == len(results) and (df.status == "ok").all() and (df.eval_seconds > 0).all()
    assert len(tracker.history) == len(results)
    hv = [h["hypervolume"] for h in tracker.history]
    assert hv == sorted(hv), "hypervolume of the evaluated set never decreases"


FORKED_WORKER = """
import json, os, sys
import dask, psutil
from nas.evaluators.dask import DaskPool

def probe():
    return {"preloaded": "nas.wann.network" in sys.modules, "parent": psutil.Process(os.getppid()).cmdline()}

if __name__ == "__main__":
    key = "distributed.worker.multiprocessing-method"
    with DaskPool(workers=1, preload=("nas.wann.network",)) as pool:
        out = pool.client.submit(probe, pure=False).result()
        out["during"] = dask.config.get(key)
    out["after"] = dask.config.get(key)
    print(json.dumps(out))
"""


def test_local_workers_are_forked_from_a_server_that_imported_the_evaluator(tmp_path):
    """A LocalCluster's worker is a fork of multiprocessing's fork server, which imported the
    pool's ``preload`` (a backend's ``worker_modules``): the worker starts with them imported, in
    a fraction of a spawned interpreter's time. In a fresh process, as the fork server is one per
    process and keeps the preload of the first pool; the pool restores Dask's setting on exit."""
    import json
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(FORKED_WORKER)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["preloaded"], "the worker had to import what the fork server should have"
    assert any("multiprocessing.forkserver" in part for part in out["parent"]), out["parent"]
    assert (out["during"], out["after"]) == ("forkserver", "spawn")


def test_backends_name_the_modules_their_workers_import():
    import importlib

    from nas.backends import BACKENDS

    for b in BACKENDS.values():
        assert b.worker_modules, b
        for name in b.worker_modules:
            importlib.import_module(name)


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ClusterError, match="scheduler_address"):
        with DaskPool(scheduler_address="tcp://127.0.0.1:9", connect_timeout=2):
            pass


def test_failed_evaluation_is_recorded_not_raised(trained):
    from nas.genome import Genome

    evaluator = build_evaluator(trained)
    bad = Genome(tuple([9] * build_space(trained).n_var))
    with DaskPool(workers=1) as pool:
        [r] = pool.evaluate(evaluator, [bad])
    assert r.status == "failed" and "out of bounds" in r.error


def test_existing_scheduler_via_scheduler_address(trained, tmp_path):
    """A real `dask scheduler` and `dask worker` processes; the pool connects by address."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.conftest import free_port

    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0", "--no-show"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(2)
        procs.append(subprocess.Popen([dask, "worker", addr, "--nthreads", "1", "--no-dashboard",
                                       "--local-directory", str(tmp_path)], cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        cfg = trained.model_copy(update={"evaluation": trained.evaluation.model_copy(
            update={"scheduler_address": addr})})
        from nas.factory import build_pool

        with build_pool(cfg) as pool:
            deadline = time.time() + 60
            while pool.n_workers < 1 and time.time() < deadline:
                time.sleep(0.5)
            assert pool.n_workers == 1
            space = build_space(cfg)
            results = pool.evaluate(build_evaluator(cfg), [space.largest(), space.smallest()])
        assert all(r.ok for r in results), [r.error for r in results]
        assert len({r.worker for r in results}) == 1 and results[0].worker.startswith("tcp://127.0.0.1:")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_a_search_keeps_running_while_workers_join_and_leave(synthetic, tmp_path):
    """Real `dask scheduler` and `dask worker` processes: a second worker joins after a few
    results and the first one leaves (SIGTERM) half-way; the asynchronous search completes its
    budget, every result is a real one, and both workers did some of the work."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from nas.evaluators.dask import DaskPool
    from nas.evaluators.table import TableEvaluator
    from nas.runners import AsyncRunner
    from nas.spaces.nb201 import NB201Space
    from nas.strategies import AgingEvolutionStrategy
    from tests.conftest import free_port

    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")

    def worker():
        return subprocess.Popen([dask, "worker", addr, "--nthreads", "1", "--no-dashboard", "--local-directory",
                                 str(tmp_path)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
                               ":0", "--no-show"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(2)
        first = worker()
        procs.append(first)
        ev = TableEvaluator(str(synthetic), "cheap_acc", "final_acc", ("lat_ms",), arch_column="cell", sim_seconds=0.2)
        seen: list[str] = []

        def on_result(r):
            seen.append(r.worker)
            if len(seen) == 4:
                procs.append(worker())  # joins mid-run
            if len(seen) == 10:
                first.terminate()  # leaves mid-run; Dask reschedules what it held

        with DaskPool(scheduler_address=addr) as pool:
            deadline = time.time() + 60
            while pool.n_workers < 1 and time.time() < deadline:
                time.sleep(0.2)
            strategy = AgingEvolutionStrategy(NB201Space(), ["val_accuracy", "lat_ms"], {}, 0, population=6,
                                              tournament=3)
            results = AsyncRunner(strategy, pool, ev, 22, 2, 1, None, on_result=on_result).run()
        assert len(results) == 22 and all(r.ok for r in results), [r.error for r in results if not r.ok]
        assert len({r.genome for r in results}) == 22
        workers = [r.worker for r in results]
        assert len(set(workers)) >= 2  # the joined worker took over
        assert first.poll() is not None and len(set(workers[-6:])) == 1  # after the first left, one worker did all
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_adaptive_local_cluster_grows_while_candidates_wait(synthetic):
    from nas.config import Config
    from nas.evaluators.dask import DaskPool
    from nas.evaluators.table import TableEvaluator
    from nas.spaces.nb201 import NB201Space
    from nas.strategies.base import fresh_samples

    cfg = Config.model_validate({"evaluation": {"adaptive": {"minimum": 1, "maximum": 3}}})
    assert (cfg.evaluation.adaptive.minimum, cfg.evaluation.adaptive.maximum) == (1, 3)
    with pytest.raises(Exception, match="exceeds maximum"):
        Config.model_validate({"evaluation": {"adaptive": {"minimum": 4, "maximum": 3}}})
    ev = TableEvaluator(str(synthetic), "cheap_acc", "final_acc", ("lat_ms",), arch_column="cell", sim_seconds=0.5)
    genomes = fresh_samples(NB201Space(), np.random.default_rng(0), 16, [])
    with DaskPool(adaptive=(1, 3)) as pool:
        assert pool.n_workers == 1
        results = pool.evaluate(ev, genomes)
    assert all(r.ok for r in results) and len({r.worker for r in results}) >= 2


def test_chunked_generation_gives_each_candidate_one_result_as_unchunked():
    """chunk_size > 1 sends several candidates per Dask task (cut so each worker still gets
    MIN_TASKS_PER_WORKER tasks); results are the same per candidate, they come back one at a
    time, and the queue counts candidates, not tasks."""
    from nas.evaluators.dask import MIN_TASKS_PER_WORKER
    from nas.genome import Genome
    from tests.test_reliability import Fn

    genomes = [Genome((i, i % 3, 0), "nb201") for i in range(40)]
    with DaskPool(workers=2, chunk_size=8) as pool:
        assert pool.chunk_for(40) == 5 == 40 // (MIN_TASKS_PER_WORKER * 2)
        assert pool.chunk_for(1000) == 8 and pool.chunk_for(3) == 1
        chunked = list(pool.iter_evaluate(Fn("ok"), genomes))
        q = pool.queue()
        keys = q.submit_chunk(Fn("ok"), genomes[:5])
        assert len(keys) == len(set(keys)) == 5 and q.count() == 5 and not q.is_empty()
        got = [next(q)]
        assert q.count() == 4 and not q.is_empty()  # four results of the finished chunk still to hand out
        got += list(q)
        assert q.is_empty() and q.count() == 0
    with DaskPool(workers=2) as pool:
        single = list(pool.iter_evaluate(Fn("ok"), genomes))
    assert sorted(r.genome.values for r in chunked) == sorted(g.values for g in genomes)
    assert {r.genome: (r.status, r.metrics, r.seed) for r in chunked} == \
        {r.genome: (r.status, r.metrics, r.seed) for r in single}
    assert sorted(k for k, _ in got) == sorted(keys) and all(r.ok for _, r in got)
    with pytest.raises(ValueError, match="chunk_size"):
        DaskPool(chunk_size=0)


def test_a_stopped_run_leaves_no_restarted_worker_behind():
    """On SIGINT/SIGTERM flows/interrupt.py stands the LocalCluster's nannies down before it
    stops the worker processes: without it a nanny (in this process) restarts a worker that it
    sees end, the fresh worker outlives the run and prints its lost-scheduler traceback."""
    import time

    import psutil

    from nas.evaluators.dask import stand_down_local_workers

    me = psutil.Process()
    with DaskPool(workers=1) as pool:
        before = {p.pid for p in me.children(recursive=True)}
        worker_pid = next(iter(pool.client.run(lambda: __import__("os").getpid()).values()))
        assert worker_pid in before
        stand_down_local_workers()
        worker = psutil.Process(worker_pid)  # one handle: a second lookup races the worker's exit
        worker.terminate()
        worker.wait(timeout=10)
        time.sleep(1.5)  # a restart spawns at once (the new process exists before it imports anything)
        fresh = {p.pid for p in me.children(recursive=True)} - before
        assert not fresh, f"the nanny started worker processes {fresh} after the stand-down"


class Sleeper:
    """An evaluator that sleeps a genome's first value in tenths of a second."""

    base_seed = 0

    def metrics(self, genome, seed):
        import time

        time.sleep(genome.values[0] / 10)
        return {"val_accuracy": 0.9}


def _wait_for(pred, seconds: float) -> bool:
    import time

    end = time.monotonic() + seconds
    while not pred() and time.monotonic() < end:
        time.sleep(0.2)
    return pred()


def test_release_idle_retires_workers_while_the_last_candidate_runs_and_new_work_brings_them_back():
    """What a runner draining at its budget asks of the pool (AsyncRunner, drain="finish"): once
    nothing more will be submitted, Dask retires the workers of an elastic cluster as they fall
    idle, while the last, slow candidate runs on and still returns; the next queue scales the
    cluster back."""
    import time

    from nas.genome import Genome

    with DaskPool(adaptive=(3, 3)) as pool:
        q = pool.queue()
        slow = q.submit(Sleeper(), Genome((100, 0, 0), "nb201"))  # 10 s
        for i in (1, 2):
            q.submit(Sleeper(), Genome((i, 1, 0), "nb201"))
        fast = [next(q), next(q)]
        assert slow not in {k for k, _ in fast} and pool.n_workers == 3
        time.sleep(0.5)  # the slow one has started (if it was queued behind a fast one on its worker)
        released = time.time()
        pool.release_idle()
        assert _wait_for(lambda: pool.n_workers == 1, 8), f"{pool.n_workers} workers still up"
        one_left = time.time()
        key, r = next(q)
        # it ran on the worker kept, from before the release to after the others left: never moved
        assert key == slow and r.ok and r.started_at < released and one_left < r.finished_at
        assert list(pool.client.nthreads()) == [r.worker]
        pool.queue()
        assert _wait_for(lambda: pool.n_workers == 3, 60), f"{pool.n_workers} workers after new work"


def test_a_fixed_local_cluster_keeps_its_workers_after_a_release():
    """evaluation.workers without evaluation.adaptive: the processes stay through release_idle (a
    generational search's last generation), so the next work on the pool finds every one of them."""
    import time

    from nas.genome import Genome

    with DaskPool(workers=3) as pool:
        before = set(pool.client.nthreads())
        q = pool.queue()
        q.submit(Sleeper(), Genome((1, 0, 0), "nb201"))
        pool.release_idle()
        next(q)
        time.sleep(2.5)  # Dask's adaptive scaling, were it on, would retire an idle worker within 1.5 s
        assert set(pool.client.nthreads()) == before


def test_an_adaptive_cluster_keeps_its_workers_between_batches_and_lets_them_go_at_the_drain(synthetic):
    """evaluation.adaptive grows the cluster as candidates wait. Plain Dask adaptive scaling would
    also retire a worker idle for a second between two batches of an asynchronous search and start a
    new one for the next (eight worker processes for three slots, measured before this was mended);
    the pool keeps its workers until the runner drains (release_idle), and only then retires them."""
    import time

    from nas.evaluators.table import TableEvaluator
    from nas.runners import AsyncRunner
    from nas.spaces.nb201 import NB201Space
    from nas.strategies import RandomStrategy

    ev = TableEvaluator(str(synthetic), "cheap_acc", "final_acc", ("lat_ms",), arch_column="cell",
                        sim_seconds=0.3, sim_seconds_column="lat_ms", sim_scale=0.6)  # 0.9-4.6 s
    with DaskPool(adaptive=(1, 3)) as pool:
        runner = AsyncRunner(RandomStrategy(NB201Space(), ["val_accuracy", "lat_ms"], {}, 0), pool, ev, budget=15,
                             in_flight=3, batch=3, out_dir=None, drain="finish")
        results = runner.run()
        workers = {r.worker for r in results}
        assert len(results) == 15 and 2 <= len(workers) <= 3, f"{len(workers)} worker processes for 3 slots"
        assert _wait_for(lambda: pool.n_workers == 1, 10)  # drained: the idle ones are retired

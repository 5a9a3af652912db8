"""Shared fixtures: a tiny configuration rooted in a temporary folder, a tiny trained supernet."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nas.env import configure_environment

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
configure_environment(ROOT)

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # `make test` runs test processes side by side (pytest-xdist, three on two cores): each, and every
    # `evonas` process it starts, trains with its share of the cores, since torch threads beyond
    # the cores make every process far slower than one at a time (at least one thread each)
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("EVONAS_TORCH_THREADS", str(_share))
    import torch

    from nas.env import default_threads

    torch.set_num_threads(default_threads())  # this process too, as the evonas processes will read it

TINY = [
    # digits keep the shared fixtures fast; the default data (omniglot_pooled) has its own pipeline test
    "data.kind=digits", "data.image_size=null", "supernet.epochs=2", "surrogate.n_samples=12", "search.population=6", "search.generations=2",
    "search.surrogate_generations=5", "search.surrogate_population=12", "selection.finetune_epochs=1",
    "selection.n_spread=1", "evaluation.latency_repeats=3", "evaluation.latency_warmup=1",
]


def tiny_config(root: Path, extra: list[str] | None = None):
    """The project's params.yaml with tiny budgets and every output under ``root``."""
    from nas.config import load_config

    outs = [f"data.out_dir={root}/data/prepared", f"supernet.out_dir={root}/artifacts/supernet",
            f"surrogate.out_dir={root}/artifacts/surrogate", f"search.out_dir={root}/artifacts/search",
            f"selection.out_dir={root}/artifacts/select", f"selection.reports_dir={root}/reports"]
    return load_config(ROOT / "params.yaml", TINY + outs + (extra or []))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Prepared digits and a supernet trained for 2 epochs (shared by the tests that need weights;
    they read it, and only test_export writes, into its own select folder). Under pytest-xdist
    the first test process to ask trains it in the run's common temporary folder, under a file
    lock, and the others wait for it and read the same files (25-50 s of training saved per
    further process)."""
    from nas import stages

    def train(root: Path):
        cfg = tiny_config(root)
        stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
        stages.pretrain_supernet(cfg)
        return cfg

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return train(tmp_path_factory.mktemp("trained"))

    def build(common: Path) -> str:
        shutil.rmtree(common / "trained", ignore_errors=True)  # a process that failed half-way left it
        train(common / "trained")
        return "trained"

    return tiny_config(tmp_path_factory.getbasetemp().parent / once_per_run(tmp_path_factory, "trained.done", build))


def once_per_run(tmp_path_factory, record: str, build) -> str:
    """Under pytest-xdist: ``build(common)`` runs in the first test process that asks for
    ``record``, under a file lock in the run's common temporary folder ``common`` (the
    controller's basetemp, one per `pytest -n` run); the text it returns is written to
    ``common/record`` (temp file, then rename), and every process gets that text back."""
    from filelock import FileLock

    common = tmp_path_factory.getbasetemp().parent
    path = common / record
    with FileLock(str(common / (record + ".lock"))):
        if not path.is_file():
            text = build(common)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    return path.read_text()


@pytest.fixture
def evonas_bin() -> str:
    exe = shutil.which("evonas") or str(Path(os.sys.executable).parent / "evonas")
    assert Path(exe).exists(), "the evonas console script is not installed (run make install)"
    return exe


OPTIMUM = (3, 3, 2, 1, 3, 3)


def make_synthetic(path: Path) -> Path:
    """Every NB201 cell, with renamed columns: a smooth additive score with one optimum
    (OPTIMUM), a noisy cheap signal, and a latency that grows with conv count."""
    from nas.genome import Genome
    from nas.spaces.nb201 import format_arch

    rng = np.random.default_rng(0)
    weights = rng.uniform(0, 1, size=(6, 5))
    for e, o in enumerate(OPTIMUM):
        weights[e, o] = 2.5
    rows = []
    for vals in itertools.product(range(5), repeat=6):
        score = 80 + 2 * sum(weights[e, o] for e, o in enumerate(vals))
        rows.append({"cell": format_arch(Genome(vals, "nb201")), "final_acc": score,
                     "cheap_acc": score + rng.normal(0, 0.3),
                     "lat_ms": 1 + sum(v in (2, 3) for v in vals) + 0.01 * sum(vals)})
    pd.DataFrame(rows).sample(frac=1.0, random_state=1).to_csv(path, index=False)
    return path


def synthetic_table_sets(path) -> list[str]:
    """`--set` values that point the table evaluator at the synthetic table (columns renamed)."""
    return ["space.kind=nb201", "evaluation.kind=table", f"evaluation.table.path={path}",
            "evaluation.table.arch_column=cell", "evaluation.table.signal_column=cheap_acc",
            "evaluation.table.report_column=final_acc", "evaluation.table.cost_columns=[lat_ms]",
            "search.objectives=[val_accuracy, lat_ms]"]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("table") / "synthetic.csv")


def stop_group(proc, grace: float) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its children; SIGKILL
    them if they are still there after ``grace`` seconds."""
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(home: Path):
    """Start a real Prefect server (API and UI) with `evonas ui` on a free 127.0.0.1 port, its
    PREFECT_HOME and log in ``home``, in a process group of its own; wait until it answers."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home / ".prefect")}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")
    exe = str(Path(sys.executable).parent / "evonas")
    proc = subprocess.Popen([exe, "ui", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()  # the server holds its own copy
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            if proc.poll() is None:
                stop_group(proc, 5)
            raise AssertionError("the Prefect server did not answer within 180 s:\n"
                                 + (home / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    return proc, {"url": url, "api": f"{url}/api", "log": home / "server.log", "port": port}


def _serve(tmp_path_factory, name: str):
    """A real Prefect server for the session of this process, stopped at its end."""
    proc, server = _start_server(tmp_path_factory.mktemp(name))
    try:
        yield server
    finally:
        stop_group(proc, 30)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real Prefect server for the end-to-end pipeline test and the operations tests (the
    end-to-end test reads every run it holds, so nothing else runs flows on it)."""
    yield from _serve(tmp_path_factory, "prefect-server")


SHARED_RUNS_SERVER = "prefect-runs-server.json"  # under xdist: the shared runs server's address and process group


@pytest.fixture(scope="session")
def runs_api(tmp_path_factory) -> str:
    """The API URL of a second real Prefect server, for tests that start many `evonas` processes
    (`dvc repro` runs one per stage; killed and resumed searches): with ``PREFECT_API_URL`` set,
    a process talks to it instead of starting Prefect's temporary server (several seconds each).

    Under pytest-xdist one such server serves every test process: the first to ask starts it
    (:func:`once_per_run`), the others read its address, and the
    controller stops it when the whole run ends (``pytest_sessionfinish``). A Prefect server
    costs about 17 s of CPU to start and 3 % of a core while idle, so one instead of three."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        for server in _serve(tmp_path_factory, "prefect-runs"):
            yield server["api"]
        return
    import json

    def build(common: Path) -> str:
        home = common / "prefect-runs"
        home.mkdir(exist_ok=True)
        proc, server = _start_server(home)
        return json.dumps({"api": server["api"], "pgid": proc.pid})

    yield json.loads(once_per_run(tmp_path_factory, SHARED_RUNS_SERVER, build))["api"]


def pytest_sessionfinish(session):
    """The xdist controller, once every test process has ended: stop the shared runs server (a
    run without xdist writes no record; its server is the fixture's own)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import json
    import signal
    import time

    record = session.config._tmp_path_factory.getbasetemp() / SHARED_RUNS_SERVER
    if not record.is_file():
        return
    pgid = json.loads(record.read_text())["pgid"]
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


# ---------------------------------------------------------------------------- the order of the test files


def file_order_key(seconds: dict[str, float]):
    """Sort key of a test item: its file's measured seconds, heaviest first; a file not yet
    measured goes first of all, as it may be heavy. Sorting is stable, so each file's tests stay
    together and in their written order."""
    return lambda item: -seconds.get(item.path.name, float("inf"))


def pytest_collection_modifyitems(config, items):
    """Heaviest test files first (tests/file_seconds.py says why and how to re-measure): with
    `make test`'s three processes and ``--no-loadscope-reorder``, the long files start first and
    the short ones fill in at the end."""
    import json

    items.sort(key=file_order_key(json.loads((ROOT / "tests/file_seconds.json").read_text())))


# ---------------------------------------------------------------------------- DVC in a copy of the repository


def sh(args, cwd, env, timeout=900):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def repo_copy(tmp_path: Path, sets: list[str], api: str | None = None) -> tuple[Path, dict]:
    """A git repository holding a copy of this one, its params.yaml with ``sets`` applied, and
    the environment to run `dvc` and `evonas` in it (against the Prefect server at ``api``, else
    each `evonas` process starts Prefect's temporary server)."""
    from nas.config import apply_overrides

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for f in files:
        if (ROOT / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, repo / f)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(apply_overrides(raw, sets)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PREFECT_HOME": str(tmp_path / ".prefect"), "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("PREFECT_API_URL", None)
    if api:
        env["PREFECT_API_URL"] = api
    sh(["git", "init", "-q"], repo, env)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "copy"], repo, env)
    return repo, env

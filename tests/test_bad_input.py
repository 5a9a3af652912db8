"""Bad input, table-driven: each case runs the real ``evonas`` CLI and must exit non-zero
before any evaluation starts (no Dask cluster announced, no candidate scored) with a
one-paragraph message naming the offending key or file (no traceback), leaving the outputs of
an earlier run untouched. (Failing fast is judged by what ran, not by wall-clock seconds: a
process start with Prefect's ephemeral API took 10.1 s once on a busy CI machine.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.conftest import ROOT, free_port, synthetic_table_sets

EXE = str(Path(sys.executable).parent / "evonas")
SENTINELS = {"reports/metrics.json": '{"from": "an earlier run"}\n',
             "artifacts/search/summary.json": '{"from": "an earlier run"}\n',
             "artifacts/select/pareto.csv": "candidate_id\nearlier\n",
             "data/prepared/meta.json": '{"from": "an earlier run"}\n'}



def _table(t: Path, *extra: str) -> list[str]:
    sets = [*synthetic_table_sets(t), *extra]
    return [a for s in sets for a in ("--set", s)]


WANN = ("space.kind=wann", "search.objectives=[mean_score, connections]")


def _sets(*pairs: str) -> list[str]:
    return [a for s in pairs for a in ("--set", s)]


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def cases(tmp: Path, table: Path) -> list[tuple[str, list[str], str, dict[str, str]]]:
    """(name, CLI args after `evonas`, text the message must contain, files to create first)."""
    P = ["--params", str(ROOT / "params.yaml")]
    x = np.random.default_rng(0).random((30, 8, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 10)
    bad_shape = _npz(tmp / "flat.npz", x=np.zeros(30), y=y)
    bad_len = _npz(tmp / "short_y.npz", x=x, y=y[:20])
    neg = _npz(tmp / "negative.npz", x=x, y=y - 1)
    floaty = _npz(tmp / "float_labels.npz", x=x, y=y + 0.5)
    no_y = _npz(tmp / "no_y.npz", x=x)
    cyclic = tmp / "cyclic_genome.json"
    cyclic.write_text('{"inputs": 5, "outputs": 1, "hidden": [[7, "relu"], [8, "tanh"]], '
                      '"conns": [[0, 7], [7, 8], [8, 7], [8, 6]]}')
    wide = tmp / "wide_genome.json"
    wide.write_text('{"inputs": 64, "outputs": 10, "hidden": [], "conns": [[0, 65]]}')
    not_yaml = tmp / "broken.yaml"
    not_yaml.write_text("search: [unclosed\n")
    not_mapping = tmp / "list.yaml"
    not_mapping.write_text("- a\n- b\n")
    empty = tmp / "empty.yaml"
    empty.write_text("")
    comments = tmp / "comments.yaml"
    comments.write_text("# nothing set here\n\n   # nor here\n")
    binary = tmp / "random.yaml"
    binary.write_bytes(np.random.default_rng(1).integers(0, 256, 512, dtype=np.uint8).tobytes() + b"\xff\xfe")
    folder = tmp / "params_dir.yaml"
    folder.mkdir(exist_ok=True)
    bad_table = tmp / "no_cost.csv"
    bad_table.write_text(Path(table).read_text().replace("lat_ms", "latency"))
    port = free_port()
    from nas.checkpoint import search_checkpointer
    from nas.config import load_config

    # the run folder of these params (relative: the CLI runs in the case's folder)
    ck = str(search_checkpointer(load_config(ROOT / "params.yaml", synthetic_table_sets(table))).path)
    return [
        ("unknown key", ["run", *P, *_sets("search.populaton=3")], "search.populaton", {}),
        ("unknown section", ["run", *P, *_sets("serach.population=3")], "serach", {}),
        ("wrong type", ["stage", "search", *P, *_sets("evaluation.workers=two")], "evaluation.workers", {}),
        ("zero population", ["run", *P, *_sets("search.population=0")], "search.population", {}),
        ("negative generations", ["run", *P, *_sets("search.generations=-2")], "search.generations", {}),
        ("zero workers", ["run", *P, *_sets("evaluation.workers=0")], "evaluation.workers", {}),
        ("negative budget", ["run", *P, *_sets("search.mode=async", "search.async.budget=-5")], "search.async.budget", {}),
        ("batch above in_flight", ["run", *P, *_sets("search.mode=async", "search.async.in_flight=2",
                                                     "search.async.batch=4")], "batch", {}),
        ("empty objectives", ["run", *P, *_sets("search.objectives=[]")], "search.objectives", {}),
        ("unknown objective", ["run", *P, *_sets("search.objectives=[val_accuracy, energy]")], "energy", {}),
        ("constraint on unknown objective", ["run", *P, *_sets("search.constraints={max_energy: 3}")], "max_energy", {}),
        ("constraint the table cannot check", ["run", *P, *_table(table, "search.constraints={max_latency_ms: 3}")],
         "max_latency_ms", {}),
        ("training candidates side by side in one process", ["run", *P, *_sets("evaluation.threads_per_worker=2")],
         "evaluation.workers", {}),
        ("negative timeout", ["run", *P, *_sets("evaluation.timeout_s=-1")], "evaluation.timeout_s", {}),
        ("fault rates above 1", ["run", *P, *_sets("evaluation.faults.error_rate=0.7", "evaluation.faults.nan_rate=0.6")],
         "error_rate + nan_rate + hang_rate", {}),
        ("params file missing", ["run", "--params", str(tmp / "nope.yaml")], "nope.yaml", {}),
        ("params not YAML", ["run", "--params", str(not_yaml)], "broken.yaml", {}),
        ("params not a mapping", ["run", "--params", str(not_mapping)], "list.yaml", {}),
        ("params file empty", ["run", "--params", str(empty)], "empty.yaml' is empty", {}),
        ("params file only comments", ["run", "--params", str(comments)], "comments.yaml' is empty", {}),
        ("params file not text", ["run", "--params", str(binary)], "random.yaml' is not UTF-8 text", {}),
        ("params file a directory", ["run", "--params", str(folder)], "params_dir.yaml' is a directory", {}),
        ("dataset path missing", ["run", *P, *_sets("data.kind=npz", f"data.path={tmp / 'missing.npz'}")],
         "missing.npz", {}),
        ("dataset folder missing", ["stage", "prepare", *P, *_sets("data.kind=folder", f"data.path={tmp / 'nofolder'}")],
         "nofolder", {}),
        ("dataset wrong shape", ["run", *P, *_sets("data.kind=npz", f"data.path={bad_shape}")], "'x' must have shape", {}),
        ("labels of wrong length", ["run", *P, *_sets("data.kind=npz", f"data.path={bad_len}")], "'y' must have shape", {}),
        ("negative labels", ["run", *P, *_sets("data.kind=npz", f"data.path={neg}")], "labels must be >= 0", {}),
        ("non-integer labels", ["run", *P, *_sets("data.kind=npz", f"data.path={floaty}")], "integer class labels", {}),
        ("dataset without labels", ["run", *P, *_sets("data.kind=npz", f"data.path={no_y}")], "missing array(s) ['y']", {}),
        ("unknown environment id", ["run", *P, *_sets(*WANN, "evaluation.wann.task=NoSuchEnv-v9")], "NoSuchEnv-v9", {}),
        ("WANN with a fixed-length strategy", ["run", *P, *_sets(*WANN, "search.strategy=nsga2")], "search.strategy", {}),
        ("WANN genome not feed-forward", ["wann-score", str(cyclic), *P, *_sets(*WANN)], "cycle", {}),
        ("WANN genome of another size", ["wann-score", str(wide), *P, *_sets(*WANN, "evaluation.wann.task=swingup")],
         "has 5 inputs", {}),
        ("table missing", ["run", *P, *_table(tmp / "nope.csv")], "nope.csv", {}),
        ("table missing a named column", ["run", *P, *_table(bad_table)], "lat_ms", {}),
        ("table column renamed wrong", ["run", *P, *_table(table, "evaluation.table.signal_column=val_acc")],
         "val_acc", {}),
        ("unreachable scheduler", ["run", *P, *_table(table, f"evaluation.scheduler_address=tcp://127.0.0.1:{port}")],
         "evaluation.scheduler_address", {}),
        ("malformed scheduler address", ["run", *P, *_table(table, "evaluation.scheduler_address=localhost")],
         "tcp://host:port", {}),
        ("corrupt checkpoint", ["stage", "search", "--resume", *P, *_table(table)], "checkpoint.json",
         {ck: "\x00\x13 not json"}),
        ("truncated checkpoint", ["stage", "search", "--resume", *P, *_table(table)], "truncated or corrupt",
         {ck: '{"version": 1, "fingerprint": {"seed": 0}, "events": [["ask", 6, [[0, 1'}),
        ("corrupt checkpoint, default resume", ["stage", "search", *P, *_table(table)], "--fresh",
         {ck: "\x00\x13 not json"}),
        ("checkpoint of another format", ["stage", "search", "--resume", *P, *_table(table)], "not an evonas checkpoint",
         {ck: '{"version": 99}'}),
        ("select before search", ["stage", "select", *P, *_table(table, f"search.out_dir={tmp / 'empty'}")],
         "no population snapshots", {}),
        ("search before pretrain", ["stage", "search", *P, *_sets(f"supernet.out_dir={tmp / 'nothing'}")],
         "supernet", {}),
        ("unknown stage", ["stage", "train", *P], "unknown stage 'train'", {}),
        ("torch threads not a number", ["run", *P], "EVONAS_TORCH_THREADS='two'", {}, {"EVONAS_TORCH_THREADS": "two"}),
        ("zero torch threads", ["stage", "pretrain", *P], "EVONAS_TORCH_THREADS='0'", {}, {"EVONAS_TORCH_THREADS": "0"}),
    ]


def run_case(case, root: Path) -> tuple:
    name, args, needle, files, *extra_env = case  # a fifth item: environment variables to set
    work = root / name.replace(" ", "_")
    for rel, text in {**SENTINELS, **files}.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    env = {**os.environ, "PREFECT_HOME": str(work / ".prefect"), **(extra_env[0] if extra_env else {})}
    t0 = time.perf_counter()
    proc = subprocess.run([EXE, *args], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t0
    after = {p: p.read_bytes() for p in work.rglob("*") if p.is_file() and ".prefect" not in p.parts}
    return name, needle, proc, took, before, after


def judge(outcome) -> list[str]:
    """What is wrong with how one bad input was handled (empty: handled well)."""
    name, needle, proc, took, before, after = outcome
    msg = proc.stderr.strip()
    problems = []
    if proc.returncode == 0:
        problems.append(f"{name}: exit 0")
    if needle not in msg:
        problems.append(f"{name}: message lacks {needle!r}: {msg[-400:]!r}")
    if "Traceback" in proc.stderr + proc.stdout:
        problems.append(f"{name}: printed a traceback")
    if msg.count("\n\n") > 0 or len(msg) > 1200:
        problems.append(f"{name}: not one short paragraph ({len(msg)} characters)")
    said = proc.stdout + proc.stderr
    if "Dask: tcp://" in said or "evaluated" in said:
        problems.append(f"{name}: started evaluating before it failed ({took:.1f}s)")
    if after != before:
        changed = sorted(str(p.name) for p in set(before) | set(after) if before.get(p) != after.get(p))
        problems.append(f"{name}: files changed or appeared: {changed}")
    return problems


def run_all(root: Path, table: Path, workers: int = 4) -> list[tuple]:
    root.mkdir(parents=True, exist_ok=True)
    todo = cases(root, table)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda c: run_case(c, root / "cases"), todo))


def test_bad_inputs_fail_fast_with_a_clear_message(synthetic, tmp_path):
    outcomes = run_all(tmp_path, synthetic)
    assert len(outcomes) >= 20
    problems = [p for o in outcomes for p in judge(o)]
    assert not problems, "\n".join(problems)


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([EXE, "run", "--params", str(ROOT / "params.yaml"), "--debug",
                           "--set", "evaluation.scheduler_address=localhost"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "tcp://host:port" in proc.stderr

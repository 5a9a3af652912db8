"""The layout the design card fixes: ``nas`` is the core library and imports no orchestration.

Every ``nas`` module must import with neither Prefect nor Dask (nor ``flows`` / ``tasks``)
loaded, and importing the library must not change the environment: the ``evonas`` entry point
(:func:`flows.cli.main`) sets the offline-safe defaults, not a library import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORCHESTRATION = ("prefect", "dask", "distributed", "flows", "tasks")

PROBE = r"""
import importlib, json, os, pkgutil, sys
import sklearn, torch  # noqa: F401,E401  (sklearn sets KMP_* itself; only what evonas changes counts)
env = dict(os.environ)
import nas
names = sorted(m.name for m in pkgutil.walk_packages(nas.__path__, "nas."))
loaded = {}
for n in names:
    importlib.import_module(n)
    tops = sorted({k.split(".")[0] for k in sys.modules} & set(ORCH))
    if tops:
        loaded[n] = tops
        break
changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
print(json.dumps({"modules": len(names), "loaded": loaded, "changed": changed}))
"""


def _probe() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DVC_")) and k not in
           ("DO_NOT_TRACK", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", f"ORCH = {ORCHESTRATION!r}\n" + PROBE], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_nas_module_imports_without_prefect_dask_or_flows_and_leaves_the_environment_alone():
    r = _probe()
    assert r["modules"] > 50, "walked the whole package"
    assert r["loaded"] == {}, f"the first module that pulled in orchestration: {r['loaded']}"
    assert r["changed"] == [], f"importing nas changed environment variables {r['changed']}"


def test_the_entry_point_lives_with_the_flows_and_sets_the_environment(tmp_path):
    text = (ROOT / "pyproject.toml").read_text()
    assert 'evonas = "flows.cli:main"' in text
    assert not (ROOT / "nas" / "cli.py").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DVC_")) and k != "DO_NOT_TRACK"}
    code = ("import os, sys; from flows import cli; sys.argv = ['evonas', '--help']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('PREFECT_HOME'), os.environ.get('DVC_NO_ANALYTICS'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last == f"{tmp_path / '.prefect'} 1", last


def test_test_files_run_heaviest_first_and_every_file_is_measured():
    """`make test` orders the files by tests/file_seconds.json (conftest.py): the parser reads a
    `--durations=0` log per file, the key puts heavy and unmeasured files first, and the JSON
    names every test file there is (a new file would otherwise go first until re-measured)."""
    from types import SimpleNamespace

    from tests.conftest import file_order_key
    from tests.file_seconds import file_seconds, mean_file_seconds

    log = ("12.50s call     tests/test_a.py::test_x\n 1.25s setup    tests/test_a.py::test_x\n"
           "30.00s call     tests/test_b.py::test_y[p-1]\n0.01s teardown tests/test_c.py::test_z\nnoise\n")
    assert file_seconds(log) == pytest.approx({"test_a.py": 13.75, "test_b.py": 30.0, "test_c.py": 0.01})
    assert mean_file_seconds([{"test_a.py": 10.0, "test_b.py": 1.0}, {"test_a.py": 20.0}]) == {"test_a.py": 15.0,
                                                                                              "test_b.py": 1.0}
    items = [SimpleNamespace(path=Path(f"tests/{n}")) for n in ("test_c.py", "test_a.py", "test_a.py", "test_new.py",
                                                              "test_b.py")]
    ordered = sorted(items, key=file_order_key({"test_a.py": 13.8, "test_b.py": 30.0, "test_c.py": 0.0}))
    assert [i.path.name for i in ordered] == ["test_new.py", "test_b.py", "test_a.py", "test_a.py", "test_c.py"]
    measured = set(json.loads((ROOT / "tests/file_seconds.json").read_text()))
    assert {p.name for p in (ROOT / "tests").glob("test_*.py")} <= measured

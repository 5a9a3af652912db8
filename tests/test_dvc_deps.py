"""`dvc.yaml` declares every module each stage runs (issue 17): the stage's import closure is
derived from the source (nas/codebase.py) and compared with the stage's `deps`, so an edit of
any module a stage uses makes `dvc status` report that stage changed."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from nas.codebase import STAGE_CODE, stage_files
from tests.conftest import ROOT


def _only_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _flow_calls() -> dict[str, set[str]]:
    """stage -> the `tasks.stages` functions its flow in flows/stages.py calls (helpers included)."""
    tree = ast.parse((ROOT / "flows/stages.py").read_text())
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    def calls(name: str, seen: set[str]) -> set[str]:
        out: set[str] = set()
        for node in ast.walk(defs[name]):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "t":
                out.add(node.attr)
            if isinstance(node, ast.Name) and node.id in defs and node.id not in seen:
                seen.add(node.id)
                out |= calls(node.id, seen)
        return out

    return {stage: calls(f"{stage}_flow", {f"{stage}_flow"}) for stage in STAGE_CODE}


def test_every_module_a_stage_runs_is_a_dvc_dependency():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(STAGE_CODE)
    missing = {}
    for stage in STAGE_CODE:
        deps = [ROOT / d for d in stages[stage]["deps"]]
        for f in stage_files(stage):
            if not any(f == d or d in f.parents for d in deps) and not _only_docstring(f):
                missing.setdefault(stage, []).append(str(f.relative_to(ROOT)))
    assert not missing, f"dvc.yaml deps lack modules their stage runs: {missing}"


def test_the_stage_code_map_follows_the_flows():
    """STAGE_CODE names the nas.stages functions each flow calls; a flow that starts calling
    another function without it being listed would leave its modules out of the check above."""
    for stage, used in _flow_calls().items():
        listed = set(STAGE_CODE[stage][1])
        assert used <= listed, f"{stage}: flows/stages.py calls {sorted(used - listed)}, not in nas.codebase.STAGE_CODE"


def test_closures_follow_imports_inside_functions(tmp_path):
    """A function-level import counts, and a module-level import counts only for the
    functions that use its names."""
    from nas.codebase import function_closure

    pkg = tmp_path / "nas"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from nas.b import helper\n\ndef f():\n    from nas import c\n    return helper()\n\n"
                              "def g():\n    return 1\n")
    (pkg / "b.py").write_text("import nas.d\n\ndef helper():\n    return 2\n")
    (pkg / "c.py").write_text("X = 1\n")
    (pkg / "d.py").write_text("Y = 1\n")
    names = lambda fs: sorted(p.name for p in fs)  # noqa: E731
    assert names(function_closure("nas.a", ["f"], tmp_path)) == ["__init__.py", "a.py", "b.py", "c.py", "d.py"]
    assert names(function_closure("nas.a", ["g"], tmp_path)) == ["a.py"]

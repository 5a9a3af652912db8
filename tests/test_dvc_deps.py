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


def test_dvc_outputs_follow_the_out_dirs_in_params():
    """`dvc.yaml` takes every output path from params.yaml (`${search.out_dir}`, ...), so a
    params file with its own out_dirs, such as examples/omniglot_multitask.yaml, runs under
    `dvc repro`; resolved, the paths name what each stage writes (nas.stages.stage_outputs,
    also what a skipped stage fills with its note)."""
    import re
    from functools import reduce

    from nas.config import load_config
    from nas.stages import stage_outputs

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for params in ("params.yaml", "examples/omniglot_multitask.yaml"):
        cfg = load_config(ROOT / params)
        values = cfg.model_dump(by_alias=True)

        def resolve(path: str) -> str:
            assert path.startswith("${"), f"dvc.yaml: {path!r} is not taken from params.yaml"
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(reduce(lambda d, k: d[k], m.group(1).split("."), values)),
                          path)

        for name, st in stages.items():
            declared = {resolve(o if isinstance(o, str) else next(iter(o)))
                        for key in ("outs", "metrics", "plots") for o in st.get(key, [])}
            assert {str(p) for p in stage_outputs(cfg, name)} <= declared, (params, name, declared)
            upstream = [d for d in st["deps"] if not d.startswith("nas/")]
            assert all(resolve(d) in {str(p) for s in stages for p in stage_outputs(cfg, s)} for d in upstream)


def test_every_params_key_a_stage_declares_is_written_in_params_yaml():
    """DVC reads each stage's `params:` from params.yaml itself, not from our defaults: a key the
    file leaves out stops `dvc repro` ("Parameters ... are missing from 'params.yaml'")."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    missing = []
    for name, st in stages.items():
        for key in st.get("params", []):
            node = raw
            for part in str(key).split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.append(f"{name}: {key}")
                    break
                node = node[part]
    assert not missing, f"params.yaml lacks keys dvc.yaml declares: {missing}"

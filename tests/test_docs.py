"""The documentation: generated references match the code, the site builds strictly, and the
README stays short and only shows commands that a test or ``make run`` exercises."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from flows import reference

ROOT = Path(__file__).resolve().parents[1]


def test_every_params_key_has_a_description_and_a_missing_one_is_named():
    text = reference.params_markdown()
    for key in ("seed", "data.kind", "search.async.in_flight", "evaluation.wann.tuner", "space.dag_cell.vertices"):
        assert f"| `{key}` |" in text, key

    class Inner(BaseModel):
        """A section."""
        model_config = ConfigDict(extra="forbid")
        size: int = Field(3, gt=0)  # no description

    class Root(BaseModel):
        seed: int = Field(0, description="the seed")
        inner: Inner = Field(default_factory=Inner)

    with pytest.raises(reference.MissingDescription, match=r"inner\.size"):
        reference.params_markdown(root=Root)


def test_committed_reference_pages_are_what_the_generator_writes():
    assert reference.main(["--check"]) == 0, "run `python -m flows.reference` and commit docs/reference/"
    cli = (ROOT / "docs" / "reference" / "cli.md").read_text()
    for command in ("evonas run", "evonas stage", "evonas show", "evonas benchmark", "evonas wann-score"):
        assert f"## `{command}`" in cli, command


def test_mkdocs_site_builds_strictly_offline(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner, not a build warning
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "WARNING" not in out.stderr, out.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "params" / "index.html").is_file()
    # snippets from benchmarks/results/README.md rendered as tables, not left as markers
    html = "".join(p.read_text(errors="replace") for p in (tmp_path / "site" / "benchmarks").rglob("index.html"))
    assert "<table>" in html and "--8&lt;--" not in html and "--8<--" not in html


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                cmds.append(line)
    return cmds


def _tests_text() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "tests").glob("*.py"))


def test_readme_is_short_and_every_command_in_it_is_exercised():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines (limit 250): move detail into docs/"
    cmds = _readme_commands()
    assert "make run" in cmds and "make test" in cmds
    tests = _tests_text()
    makefile = (ROOT / "Makefile").read_text()
    unexercised = []
    for cmd in cmds:
        words = shlex.split(cmd)
        if words[0] == "make":
            assert re.search(rf"^{re.escape(words[1])}:", makefile, re.M), f"no make target {words[1]}"
            # make run is the quick start itself; make test runs this file; make docs is the strict build above
            if words[1] not in ("run", "test", "docs", "clean", "install"):
                unexercised.append(cmd)
            continue
        outputs = {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--out", "--json", "--output", "-o")}
        files = [w for w in words if re.search(r"\.(ya?ml|py|csv|npz)$", w) and not w.startswith("-")
                 and w not in outputs]
        for f in files:
            if not f.startswith(("../shared/", "/")):
                assert (ROOT / f).is_file(), f"README command {cmd!r} names {f}, which does not exist"
        sets = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--set", "-s")]
        # what a test must mention: the params files and scripts the command names, else each
        # override (its value too, unless the value is a path or an address that a test sets
        # to its own temporary one), else the sub-command
        needles = [[Path(f).name] for f in files if not f.startswith("../shared/")]
        for kv in sets:
            key, _, value = kv.partition("=")
            needles.append([key] if ("/" in value or ":" in value) else [kv, f"{key}: {value}"])
        if not needles:
            needles = [[" ".join(words[:2])] if words[0] == "dask" else [words[1] if len(words) > 1 else words[0]]]
        if not all(any(n in tests for n in alternatives) for alternatives in needles):
            unexercised.append(cmd)
    assert not unexercised, f"README commands no test exercises: {unexercised}"

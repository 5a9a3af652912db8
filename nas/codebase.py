"""The project's own code a stage runs: import closures and their hash.

Two users: ``dvc.yaml``'s ``deps`` must list every module a stage imports (a test derives each
stage's closure with :func:`import_closure` and fails on a missing one), and a search
checkpoint records :func:`code_hash` of the search's closure, so a search resumes only into
the code that wrote it (after an edit of the training loop a search starts afresh instead of
replaying stale results; see :mod:`nas.checkpoint`).

Imports are read from the source with :mod:`ast` (every ``import`` statement, also those
inside functions), never by importing anything.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding ``nas/``)."""

PACKAGES = ("nas",)
"""Top-level packages whose modules count as the project's code (``tasks`` and ``flows``
orchestrate; they never change what a stage computes)."""


def module_path(name: str, root: Path = ROOT) -> Path | None:
    """The source file of module ``name`` (``nas.x.y``) under ``root``, or None."""
    base = root.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _imports(path: Path, name: str) -> set[str]:
    """Modules of :data:`PACKAGES` that the source at ``path`` (module ``name``) imports."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return set(_source_imports(path.read_text(encoding="utf-8"), str(path), pkg))


@lru_cache(maxsize=None)
def _source_imports(source: str, filename: str, pkg: str) -> frozenset[str]:
    """:func:`_imports_of_tree` of a source text, parsed once per process (a stage's closure
    reaches most modules through several entries; parsing them again each time cost seconds)."""
    return frozenset(_imports_of_tree(ast.parse(source, filename), pkg))


@lru_cache(maxsize=None)
def _closure(entries: tuple[str, ...], root: Path) -> tuple[Path, ...]:
    seen: dict[str, Path] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_path(name, root)
        if path is None:
            continue  # `from nas.x import function`: the name is not a module
        seen[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        todo.extend(_imports(path, name))
    return tuple(sorted(set(seen.values())))


def import_closure(entries: list[str] | tuple[str, ...], root: Path = ROOT) -> list[Path]:
    """Source files of the modules ``entries`` import, directly or not (themselves included)."""
    return list(_closure(tuple(sorted(entries)), Path(root)))


def files_hash(files: list[Path], root: Path = ROOT) -> str:
    """sha256 (first 16 hex digits) over the paths (relative to ``root``) and contents of ``files``."""
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _module_names(tree: ast.Module, pkg: str) -> dict[str, set[str]]:
    """Names bound by the module-level imports of a module -> the project modules they may
    come from (``from nas.x import y`` binds y from nas.x, or module nas.x.y)."""
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                out.setdefault((a.asname or a.name).split(".")[0], set()).add(a.name)
        elif isinstance(node, ast.ImportFrom):
            mod = _from_module(node, pkg)
            for a in node.names:
                out.setdefault(a.asname or a.name, set()).update({mod, f"{mod}.{a.name}"})
    return {k: {m for m in v if m.split(".")[0] in PACKAGES} for k, v in out.items()}


def function_closure(module: str, functions: list[str] | tuple[str, ...], root: Path = ROOT) -> list[Path]:
    """Source files the given functions of ``module`` run: the module itself, the modules their
    bodies import, the module-level imports whose names they use, and the same for every
    function of ``module`` they call, each followed by :func:`import_closure`. Finer than the
    module's closure: ``prepare_data`` in ``nas.stages`` does not depend on the search code that
    the same module imports for ``run_search``."""
    path = module_path(module, root)
    if path is None:
        raise ValueError(f"no module {module} under {root}")
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    pkg = module.rpartition(".")[0]
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    missing = [f for f in functions if f not in defs]
    if missing:
        raise ValueError(f"{module} defines no {', '.join(missing)}")
    bound = _module_names(tree, pkg)
    mods: set[str] = {module}
    todo, seen = list(functions), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        body = defs[name]
        sub = ast.Module(body=[body], type_ignores=[])
        mods.update(_imports_of_tree(sub, pkg))
        for node in ast.walk(body):
            if isinstance(node, ast.Name):
                if node.id in defs:
                    todo.append(node.id)
                mods.update(bound.get(node.id, ()))
    files: set[Path] = set()
    for m in mods:
        if module_path(m, root) is not None:
            files.update(import_closure([m], root) if m != module else [path])
    return sorted(files)


def _from_module(node: ast.ImportFrom, pkg: str) -> str:
    """The module a ``from ... import`` statement in package ``pkg`` reads from (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    parts = pkg.split(".")
    base = ".".join(parts[:len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _imports_of_tree(tree: ast.AST, pkg: str) -> set[str]:
    """Project modules (of :data:`PACKAGES`) that any import statement in ``tree`` names."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = _from_module(node, pkg)
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in out if m.split(".")[0] in PACKAGES}


STAGE_CODE: dict[str, tuple[str, tuple[str, ...]]] = {
    "prepare": ("nas.stages", ("prepare_data", "write_prepared")),
    "pretrain": ("nas.stages", ("pretrain_supernet",)),
    "surrogate": ("nas.stages", ("sample_subnets", "fit_surrogate")),
    "search": ("nas.stages", ("run_search", "discard_checkpoint")),
    "select": ("nas.stages", ("pareto_front", "choose", "clear_models", "finetune_and_export", "write_selection",
                              "write_graph_front", "select_own")),
}
"""Each pipeline stage's code: the functions of ``nas.stages`` its flow calls (``flows/stages.py``)."""


def stage_files(stage: str, root: Path = ROOT) -> list[Path]:
    """Source files whose edit can change what ``stage`` computes."""
    module, functions = STAGE_CODE[stage]
    return function_closure(module, functions, root)


def stage_code_hash(stage: str, root: Path = ROOT) -> str:
    return files_hash(stage_files(stage, root), root)

"""The ``evonas`` command line: run the pipeline, run one stage, show the last front."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from nas.env import configure_environment

configure_environment()

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="evonas: evolutionary multi-objective NAS as Prefect flows and DVC stages.")

STAGES = ("prepare", "pretrain", "surrogate", "search", "select")
ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="params file (YAML)")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="override KEY=VALUE (dotted key, YAML value); repeatable")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show full tracebacks")]


def _fail(msg: str, code: int) -> None:
    from nas.progress import console

    console.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _load(params: Path, overrides: list[str] | None, debug: bool):
    from nas.config import ConfigError, load_config

    try:
        return load_config(params, overrides)
    except ConfigError as exc:
        if debug:
            raise
        _fail(str(exc), 2)


def _guarded(fn, debug: bool):
    from nas.config import ConfigError
    from nas.data import DataError
    from nas.evaluators.dask import ClusterError

    try:
        return fn()
    except (ConfigError, DataError, ClusterError, FileNotFoundError) as exc:
        if debug:
            raise
        _fail(str(exc), 2)
    except Exception as exc:  # a failed stage: message, non-zero exit; traceback with --debug
        if debug:
            raise
        _fail(f"{type(exc).__name__}: {exc}\n(rerun with --debug for the traceback)", 1)


@app.command()
def run(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Run the whole pipeline (prepare, pretrain, surrogate, search, select) as one Prefect flow."""
    cfg = _load(params, set_, debug)
    t0 = time.perf_counter()

    def go():
        from flows.pipeline import pipeline_flow

        return pipeline_flow(cfg)

    metrics = _guarded(go, debug)
    _print_table(cfg)
    from nas.progress import console

    console.print(f"pipeline finished in {time.perf_counter() - t0:.0f}s: {metrics['n_pareto']} non-dominated "
                  f"models, best test accuracy {metrics['best_test_accuracy']}, hypervolume {metrics['hypervolume']:.4f}")


@app.command()
def stage(name: Annotated[str, typer.Argument(help="one of: " + ", ".join(STAGES))],
          params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Run one stage as its own Prefect flow (what each dvc.yaml stage calls)."""
    if name not in STAGES:
        _fail(f"unknown stage {name!r}; choose from {', '.join(STAGES)}", 2)
    cfg = _load(params, set_, debug)

    def go():
        from flows.stages import STAGE_FLOWS

        return STAGE_FLOWS[name](cfg)

    _guarded(go, debug)
    if name == "select":
        _print_table(cfg)


@app.command()
def show(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Print the last run's Pareto table."""
    cfg = _load(params, set_, debug)
    _guarded(lambda: _print_table(cfg), debug)


def _print_table(cfg) -> None:
    from rich.console import Console
    from rich.table import Table

    from nas.stages import pareto_table

    df = pareto_table(cfg)
    table = Table(title=f"Pareto front ({len(df)} non-dominated) — {cfg.selection.out_dir}/pareto.csv")
    for col in ("candidate_id", "val_accuracy", "params", "flops", "latency_ms", "selected", "test_accuracy",
                "selected_by"):
        table.add_column(col, justify="left" if col in ("candidate_id", "selected_by") else "right")
    for r in df.to_dict("records"):
        table.add_row(r["candidate_id"], f"{r['val_accuracy']:.4f}", f"{int(r['params']):,}", f"{int(r['flops']):,}",
                      f"{r['latency_ms']:.3f}", "yes" if r["selected"] else "",
                      "" if r["test_accuracy"] != r["test_accuracy"] else f"{r['test_accuracy']:.4f}",
                      "" if not isinstance(r.get("selected_by"), str) else r["selected_by"])
    Console(width=160).print(table)


def main() -> None:
    app(prog_name="evonas")


if __name__ == "__main__":
    sys.exit(main())

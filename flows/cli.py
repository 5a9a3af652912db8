"""The ``evonas`` command line: run the pipeline, run one stage, show the last front.

It lives with the flows it starts (``flows/``), so the core library ``nas`` imports neither
Prefect nor the flows; :func:`main` is the entry point and sets the environment defaults."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="evonas: evolutionary multi-objective NAS as Prefect flows and DVC stages.",
                  epilog="Exit status: 0 success; 2 bad params or input (params file, key or value, --set, "
                         "dataset, benchmark table, checkpoint, scheduler address, a missing upstream output), "
                         "found before Prefect or Dask start, with one line naming it; 1 a stage failed "
                         "(rerun with --debug for the traceback); 130 / 143 stopped by SIGINT (Ctrl-C) / "
                         "SIGTERM, with one line saying where and how to resume.")

from nas.backends import STAGES  # noqa: E402 - the pipeline stages, in order

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="params file (YAML)")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="override KEY=VALUE (dotted key, YAML value); repeatable")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show full tracebacks")]
ResumeOpt = Annotated[Optional[bool], typer.Option(
    "--resume/--fresh",
    help="search: continue from the checkpoint of these params and code (in artifacts/search-runs/; an error "
         "when there is none), or start afresh, moving the earlier run aside (never deleted). Default: resume "
         "when that checkpoint exists.")]


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


def _preflight(cfg, stages: tuple[str, ...], resume: bool | None, debug: bool) -> None:
    """Fail in seconds, before Prefect or Dask start, on input a stage would reject."""
    from nas.checkpoint import CheckpointError
    from nas.data import DataError
    from nas.evaluators.table import TableError
    from nas.preflight import PreflightError, check

    try:
        check(cfg, stages, resume)
    except (PreflightError, DataError, TableError, CheckpointError) as exc:
        if debug:
            raise
        _fail(str(exc), 2)


def _guarded(fn, debug: bool):
    from nas.config import ConfigError
    from nas.data import DataError
    from nas.checkpoint import CheckpointError
    from nas.evaluators.dask import ClusterError
    from nas.evaluators.table import TableError

    try:
        return fn()
    except typer.Exit:
        raise
    except (ConfigError, DataError, TableError, ClusterError, CheckpointError, FileNotFoundError) as exc:
        if debug:
            raise
        _fail(str(exc), 2)
    except Exception as exc:  # a failed stage: message, non-zero exit; traceback with --debug
        if debug:
            raise
        _fail(f"{type(exc).__name__}: {exc}\n(rerun with --debug for the traceback)", 1)


@app.command()
def run(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, resume: ResumeOpt = None,
        debug: DebugOpt = False) -> None:
    """Run the whole pipeline (prepare, pretrain, surrogate, search, select) as one Prefect flow."""
    cfg = _load(params, set_, debug)
    from nas.backends import STAGES_BY_EVALUATION

    _preflight(cfg, STAGES_BY_EVALUATION[cfg.evaluation.kind], resume, debug)
    t0 = time.perf_counter()

    def go():
        from prefect import tags

        from flows.interrupt import mark
        from flows.pipeline import pipeline_flow
        from flows.stages import run_tags

        mark("Prefect start-up", command="run")
        with tags(*run_tags(cfg)):
            return pipeline_flow(cfg, resume)

    metrics = _guarded(go, debug)
    _print_table(cfg)
    from nas.progress import console

    if "component" in metrics:  # a meta-learning search
        console.print(f"pipeline finished in {time.perf_counter() - t0:.0f}s: {metrics['n_evaluated']} "
                      f"{metrics['component']} candidates evaluated; {metrics['found_file']} holds the one found "
                      f"(use it with {metrics['use_with']})", highlight=False, soft_wrap=True)
    else:
        console.print(f"pipeline finished in {time.perf_counter() - t0:.0f}s: {metrics['n_pareto']} non-dominated "
                      f"models, hypervolume {metrics['hypervolume']:.4f}", highlight=False)
    console.print(reported_line(metrics), highlight=False, soft_wrap=True)


def reported_line(metrics: dict) -> str:
    """The run's headline figure: the test accuracy of the model validation chose, and each
    selected model's own test accuracy beside it."""
    if "headline" in metrics:  # a kind with its own select stage (WANN) words its own line
        return metrics["headline"]
    if not metrics.get("reported_model"):
        return "no model was selected"
    own = ", ".join(f"{m['candidate_id']} {m['test_accuracy']:.4f}" for m in metrics["selected_models"])
    return (f"test accuracy {metrics['test_accuracy']:.4f} of {metrics['reported_model']}, the selected model with "
            f"the best validation accuracy ({metrics['reported_val_accuracy']:.4f}; rule best_accuracy, the test split "
            f"chooses nothing); every selected model's own test accuracy: {own}")


@app.command()
def stage(name: Annotated[str, typer.Argument(help="one of: " + ", ".join(STAGES))],
          params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, resume: ResumeOpt = None,
          debug: DebugOpt = False) -> None:
    """Run one stage as its own Prefect flow (what each dvc.yaml stage calls)."""
    if name not in STAGES:
        _fail(f"unknown stage {name!r}; choose from {', '.join(STAGES)}", 2)
    cfg = _load(params, set_, debug)
    from nas.backends import STAGES_BY_EVALUATION

    used = STAGES_BY_EVALUATION[cfg.evaluation.kind]
    if name not in used:  # dvc.yaml runs every stage; this kind of search does not need this one
        from nas.progress import console
        from nas.stages import skip_stage

        console.print(skip_stage(cfg, name, used), highlight=False, soft_wrap=True)
        return
    _preflight(cfg, (name,), resume, debug)

    def go():
        from prefect import tags

        from flows.interrupt import mark
        from flows.stages import STAGE_FLOWS, run_tags

        mark("Prefect start-up", command="stage")
        with tags(*run_tags(cfg)):
            return STAGE_FLOWS[name](cfg, resume) if name == "search" else STAGE_FLOWS[name](cfg)

    _guarded(go, debug)
    if name == "select":
        _print_table(cfg)


@app.command("config")
def config_(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None,
            out: Annotated[Optional[Path], typer.Option(
                help="write the file here (e.g. params.yaml, for dvc repro) instead of printing it")] = None,
            force: Annotated[bool, typer.Option("--force", help="replace OUT when it exists")] = False,
            debug: DebugOpt = False) -> None:
    """Print the complete, validated configuration: every key, defaults filled in. With --out,
    write it, e.g. to turn an example into the params.yaml that `dvc repro` reads."""
    from nas.config import ConfigError, apply_overrides, complete_yaml, load_raw
    from nas.io import atomic_write_text

    try:
        text = complete_yaml(apply_overrides(load_raw(params), set_), str(params))
    except ConfigError as exc:
        if debug:
            raise
        _fail(str(exc), 2)
    if out is None:
        sys.stdout.write(text)
        return
    if out.exists():
        if not out.is_file():
            _fail(f"{out} is not a file", 2)
        if not force:
            _fail(f"{out} exists; pass --force to replace it (or choose another --out)", 2)
    atomic_write_text(out, text)
    from nas.progress import console

    console.print(f"wrote {out} (the complete configuration from {params})", highlight=False, soft_wrap=True)


@app.command()
def show(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None,
         draw: Annotated[Optional[str], typer.Option(
             help="draw this network of the front (a candidate id, or 'best' for the most accurate); codeepneat")] = None,
         out: Annotated[Optional[Path], typer.Option(
             help="drawing file: .png/.svg/.pdf (matplotlib) or .dot (Graphviz); default reports/<id>.png")] = None,
         debug: DebugOpt = False) -> None:
    """Print the last run's Pareto table, or draw one network of it (--draw)."""
    cfg = _load(params, set_, debug)
    if draw is None:
        _guarded(lambda: _print_table(cfg), debug)
        return

    def go():
        from nas.draw import draw_network
        from nas.factory import build_space
        from nas.genome import Genome
        from nas.stages import pareto_table

        df = pareto_table(cfg)
        score = cfg.search.accuracy_objective  # the search's own validation score; WANN: validation over weights
        score = score if score in df.columns else "val_mean_score"
        row = df.loc[df[score].idxmax()] if draw == "best" else df[df.candidate_id == draw].squeeze()
        if draw != "best" and not len(df[df.candidate_id == draw]):
            raise ValueError(f"no candidate {draw!r} on the front; ids: {', '.join(df.candidate_id)}")
        space = build_space(cfg)
        genome = Genome.from_json(row["genome"], space.name)
        path = out or Path(cfg.selection.reports_dir) / f"{row['candidate_id']}.png"
        from nas.factory import prepared_tasks

        tasks = prepared_tasks(cfg) if cfg.space.multitask != "none" else None
        return draw_network(space, genome, path, f"{row['candidate_id']}: {score} {row[score]:.4f}", tasks)

    path = _guarded(go, debug)
    from nas.progress import console

    console.print(f"drawing: {path}", highlight=False)


@app.command("wann-score")
def wann_score(genome: Annotated[Path, typer.Argument(help="a WANN genome as JSON, or a model card holding one")],
               params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Score a weight-agnostic network on validation at every shared weight and find its best shared
    weight (space.kind wann; classification reads the prepared data: run `evonas stage prepare` first)."""
    cfg = _load(params, set_, debug)
    if cfg.space.kind != "wann":
        _fail(f"wann-score needs space.kind 'wann' (the params give '{cfg.space.kind}')", 2)

    def go():
        from nas.wann.select import score_file

        try:
            return score_file(cfg, genome)
        except ValueError as exc:
            from nas.config import ConfigError

            raise ConfigError(str(exc)) from None

    res = _guarded(go, debug)
    from nas.progress import console

    console.print(f"{res['candidate_id']}: {res['architecture']}", highlight=False)
    for w, v in res["val_per_weight"].items():
        console.print(f"  shared weight {w:+g}: validation {v:.4f}", highlight=False)
    console.print(f"mean over the shared weights {res['val_mean']:.4f}; best shared weight {res['best_shared_weight']:g} "
                  f"(validation {res['val_best_shared']:.4f})", highlight=False)


@app.command()
def report(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None,
           out: Annotated[Optional[Path], typer.Option(help="HTML file (default: <selection.reports_dir>/report.html)")] = None,
           debug: DebugOpt = False) -> None:
    """Write a self-contained HTML report of the last run (front, hypervolume, models, cards)."""
    cfg = _load(params, set_, debug)

    def go():
        from nas.report import write_report

        return write_report(cfg, out)

    path = _guarded(go, debug)
    from nas.progress import console

    console.print(f"report: {path}", highlight=False)


@app.command()
def ui(host: Annotated[str, typer.Option(help="address to bind; 127.0.0.1 keeps the UI local")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="port of the UI and API")] = 4200) -> None:
    """Start a local Prefect server (UI and API) and print how to run the pipeline against it."""
    import subprocess

    from nas.progress import console

    url = f"http://{host}:{port}"
    console.print(f"Prefect UI: {url}\nRun the pipeline against it from another terminal:\n"
                  f"  export PREFECT_API_URL={url}/api\n  evonas run\n(Ctrl-C stops the server)", highlight=False)
    import os

    exe = Path(sys.executable).parent / "prefect"
    # the UI (in the browser) must call this server's API, not the default port's
    env = {**os.environ, "PREFECT_UI_API_URL": os.environ.get("PREFECT_UI_API_URL", f"{url}/api")}
    env.pop("PREFECT_API_URL", None)  # the server itself must not talk to another API
    try:
        code = subprocess.call([str(exe), "server", "start", "--host", host, "--port", str(port)], env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@app.command()
def serve(cron: Annotated[str, typer.Option(help="cron schedule, e.g. '0 2 * * *' (02:00 daily)")],
          params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None,
          name: Annotated[str, typer.Option(help="deployment name")] = "nightly",
          timezone: Annotated[str, typer.Option(help="time zone of the cron schedule")] = "UTC",
          debug: DebugOpt = False) -> None:
    """Serve the pipeline flow on a cron schedule (Prefect's serve): registers the deployment
    with the Prefect API in PREFECT_API_URL and runs scheduled runs until stopped."""
    from nas.backends import STAGES_BY_EVALUATION

    cfg = _load(params, set_, debug)
    _preflight(cfg, STAGES_BY_EVALUATION[cfg.evaluation.kind], None, debug)
    from prefect.client.schemas.schedules import CronSchedule

    try:
        schedule = CronSchedule(cron=cron, timezone=timezone)
    except Exception as exc:  # noqa: BLE001 - pydantic's message names what is wrong
        _fail(f"--cron {cron!r}: not a valid cron schedule ({str(exc).splitlines()[-1].strip()})", 2)

    def go():
        from flows.pipeline import pipeline_flow
        from flows.stages import run_tags

        pipeline_flow.serve(name=name, schedules=[schedule],
                            parameters={"cfg": cfg.model_dump(by_alias=True)}, tags=run_tags(cfg),
                            description=f"evonas pipeline on schedule {cron} ({timezone}) with {params}")

    _guarded(go, debug)


@app.command()
def benchmark(
    table: Annotated[Path, typer.Option(help="benchmark CSV (one architecture per row)")],
    signal_column: Annotated[str, typer.Option(help="column the strategies see, e.g. val_acc_12ep")],
    report_column: Annotated[str, typer.Option(help="column reported for the incumbent, e.g. test_acc_200ep")],
    out: Annotated[Path, typer.Option(help="results CSV: one row per (strategy, seed, budget)")],
    cost_columns: Annotated[Optional[list[str]], typer.Option(
        help="cost column(s) to minimise besides the signal (repeat, or comma-separated); "
             "params and flops are computed from the space's builder")] = None,
    budgets: Annotated[str, typer.Option(help="comma-separated budgets (distinct evaluations)")] = "25,50,100,200,300",
    seeds: Annotated[int, typer.Option(min=1, help="number of seeds per strategy")] = 20,
    first_seed: Annotated[int, typer.Option(
        min=0, help="seeds are first-seed .. first-seed+N-1 (e.g. held-out seeds for checking a result)")] = 0,
    strategies: Annotated[str, typer.Option(help="'all', 'ours', 'peers' or a comma-separated list")] = "all",
    arch_column: Annotated[str, typer.Option(help="column of NAS-Bench-201 arch strings")] = "arch_str",
    workers: Annotated[int, typer.Option(min=0, help="processes; 0 = all cores")] = 0,
    debug: DebugOpt = False,
) -> None:
    """Run our strategies and peers (random, pymoo-nsga2, optuna-tpe, optuna-nsga2) on a tabular benchmark."""
    from nas import benchmark as bm

    try:
        budget_list = sorted({int(b) for b in budgets.split(",") if b.strip()})
        if not budget_list or budget_list[0] <= 0:
            raise ValueError
    except ValueError:
        _fail(f"--budgets must be positive integers separated by commas, got {budgets!r}", 2)
    names = {"all": list(bm.ALL), "ours": list(bm.OURS), "peers": list(bm.PEERS)}.get(
        strategies, [s.strip() for s in strategies.split(",") if s.strip()])
    unknown = [n for n in names if n not in bm.ALL]
    if unknown:
        _fail(f"unknown strategy {unknown}; choose from {', '.join(bm.ALL)} (or all, ours, peers)", 2)
    costs = tuple(c.strip() for item in (cost_columns or []) for c in item.split(",") if c.strip())
    spec = bm.BenchmarkSpec(str(table), signal_column, report_column, costs, arch_column)

    def go():
        from nas.evaluators.table import TableError
        from nas.progress import bar

        try:
            spec.evaluator().table()  # validate columns before starting workers
        except TableError as exc:
            _fail(str(exc), 2)
        jobs = len(names) * seeds
        with bar(f"benchmark ({len(names)} strategies x {seeds} seeds, budget {budget_list[-1]})", jobs) as b:
            df = bm.run_benchmark(spec, names, budget_list, seeds, workers or None,
                                  progress=lambda s, seed: b.advance(info=f"{s} seed {seed}"), first_seed=first_seed)
        from nas.io import atomic_write_text

        cols = ["strategy", "seed", "budget", "best_report", "hv_fraction", "seconds"]
        atomic_write_text(out, df[cols].to_csv(index=False))
        return df

    df = _guarded(go, debug)
    _print_benchmark(bm.summarise(df), bool(costs), out)


def _print_benchmark(summary, with_hv: bool, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"mean ± std over seeds (results: {out})")
    for col in ["strategy", "budget", "best_report"] + (["hv_fraction"] if with_hv else []) + ["seconds"]:
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for r in summary.to_dict("records"):
        row = [r["strategy"], str(r["budget"]), f"{r['best_report_mean']:.3f} ± {r['best_report_std']:.3f}"]
        if with_hv:
            row.append(f"{r['hv_fraction_mean']:.4f} ± {r['hv_fraction_std']:.4f}")
        table.add_row(*row, f"{r['seconds_mean']:.2f}")
    console = Console(width=140)
    console.print(table)
    last = summary.budget.max()
    for r in summary[summary.budget == last].to_dict("records"):
        hv = f", hv_fraction {r['hv_fraction_mean']:.4f}" if with_hv else ""
        console.print(f"{r['strategy']}: best_report {r['best_report_mean']:.3f} ± {r['best_report_std']:.3f} "
                      f"at {last} evaluations{hv}")


def _print_table(cfg) -> None:
    from rich.console import Console
    from rich.table import Table

    from nas.stages import pareto_table

    df = pareto_table(cfg)
    metrics = [c for c in dict.fromkeys(["val_accuracy", "params", "flops", "latency_ms", *cfg.search.objectives,
                                         "val_mean_score", "val_fresh_seeds"])
               if c in df.columns and df[c].notna().any()]
    tests = [c for c in ("test_accuracy", "test_tuned_shared", "test_tuned_weights") if c in df.columns]
    meta = "component" in df.columns  # a meta-learning search: its best candidates, not a front
    title = (f"Best candidates ({len(df)}) — {cfg.selection.out_dir}/pareto.csv" if meta else
             f"Pareto front ({len(df)} non-dominated) — {cfg.selection.out_dir}/pareto.csv")
    table = Table(title=title)
    for col in ["candidate_id", *(["component"] if meta else []), *metrics, "selected", *tests, "selected_by"]:
        table.add_column(col, justify="left" if col in ("candidate_id", "selected_by") else "right")

    def fmt(v, col: str = "") -> str:
        if v != v or v is None:
            return ""
        if isinstance(v, float) and v.is_integer() and (abs(v) >= 1000 or col in ("params", "flops", "connections")):
            return f"{int(v):,}"  # counts print as counts, however small
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    for r in df.to_dict("records"):
        table.add_row(r["candidate_id"], *([r["component"]] if meta else []), *[fmt(r[m], m) for m in metrics],
                      "yes" if r["selected"] else "",
                      *[fmt(r[c]) for c in tests], r["selected_by"] if isinstance(r.get("selected_by"), str) else "")
    Console(width=160).print(table)


def main() -> None:
    """The ``evonas`` entry point: signal handling (:mod:`flows.interrupt`) and offline-safe
    environment defaults (Prefect state in the project's ``.prefect/``, telemetry off), set here
    before any command imports Prefect, Dask or DVC, then the command line."""
    from flows.interrupt import run_supervised
    from nas.env import configure_environment

    configure_environment()
    if len(sys.argv) > 1 and sys.argv[1] in ("ui", "serve"):
        app(prog_name="evonas")  # long-running servers: Ctrl-C stops them as Prefect's own servers stop
        return
    # SIGINT / SIGTERM: one line, child processes stopped, exit within seconds (flows/interrupt.py)
    sys.exit(run_supervised(lambda: app(prog_name="evonas")))


if __name__ == "__main__":
    sys.exit(main())

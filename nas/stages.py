"""What each pipeline stage does, in files: read the previous stages' outputs, write its own.

These functions hold no orchestration: Prefect tasks in ``tasks/`` call them one by one and
the flows in ``flows/`` compose them. Each stage reads only files earlier stages wrote, so
DVC can rerun any one of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nas.config import Config, ConfigError
from nas.data import Prepared, load_prepared, prepare, save_prepared
from nas.genome import EvaluationResult, Genome, candidate_seed
from nas.io import atomic_save_figure, atomic_write_json, atomic_write_text
from nas.objectives import MAXIMISE, cost_metrics, count_flops, count_params, feasible, measure_latency_ms, to_minimise
from nas.pareto import hypervolume, knee_point, non_dominated, spread_points
from nas.progress import bar
from nas.runners import AsyncRunner, GenerationalRunner, HypervolumeTracker, read_populations
from nas.strategies.base import fresh_samples
from nas.surrogates import MultiObjectiveSurrogate, rank_metrics

# ---------------------------------------------------------------------------- skipped stages

SKIPPED_FILE = "skipped.json"


def stage_outputs(cfg: Config, name: str) -> list[Path]:
    """The files and folders ``dvc.yaml`` declares as outputs of stage ``name``."""
    return {"prepare": [Path(cfg.data.out_dir)], "pretrain": [Path(cfg.supernet.out_dir)],
            "surrogate": [Path(cfg.surrogate.out_dir), Path(cfg.selection.reports_dir) / "surrogate.json"],
            "search": [Path(cfg.search.out_dir)], "select": [Path(cfg.selection.out_dir)]}[name]


def skip_stage(cfg: Config, name: str, used: tuple[str, ...]) -> str:
    """Record that stage ``name`` does not apply to ``cfg``'s evaluation kind: a small JSON
    note in each of its outputs (so ``dvc repro`` finds them and every kind of search runs
    under DVC). Nothing else there is touched. Returns the message."""
    reason = (f"stage {name!r} is not used when evaluation.kind is '{cfg.evaluation.kind}' "
              f"(stages: {', '.join(used)}): skipped")
    note = {"stage": name, "skipped": True, "evaluation_kind": cfg.evaluation.kind, "reason": reason}
    for out in stage_outputs(cfg, name):
        target = out if out.suffix == ".json" else out / SKIPPED_FILE
        if target is out and out.exists() and not _is_skip_note(out):
            continue  # a real report of an earlier run (outside DVC, which deletes outputs first): keep it
        atomic_write_json(target, note)
    return reason


def _is_skip_note(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("skipped") is True
    except (OSError, ValueError, AttributeError):
        return False


# ---------------------------------------------------------------------------- prepare


def prepare_data(cfg: Config) -> Prepared:
    return prepare(cfg.data, cfg.seed)


def write_prepared(cfg: Config, data: Prepared, seconds: float) -> dict:
    save_prepared(data, cfg.data.out_dir)
    meta_path = Path(cfg.data.out_dir) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(kind=cfg.data.kind, seconds=seconds)
    atomic_write_json(meta_path, meta)
    return meta


# ---------------------------------------------------------------------------- pretrain


def pretrain_supernet(cfg: Config) -> dict:
    from nas.costs import TABLE_FILE, CostTable
    from nas.spaces.elastic import ElasticSpace
    from nas.spaces.elastic_build import all_layers
    from nas.supernet import save_supernet, train_supernet
    from nas.training import torch_threads

    t0 = time.perf_counter()
    data = load_prepared(cfg.data.out_dir)
    with bar("pretrain supernet (epochs)", cfg.supernet.epochs) as b:
        def on_epoch(ep: int, entry: dict) -> None:
            acc = f" val largest {entry['val_acc_largest']:.3f} smallest {entry['val_acc_smallest']:.3f}" \
                if "val_acc_largest" in entry else ""
            b.advance(info=f"loss {entry['loss']:.3f}{acc}")

        with torch_threads():
            net, log = train_supernet(cfg, data, on_epoch)
    # every layer of the space measured once on this machine (1 torch thread, as the Dask workers run)
    ev = cfg.evaluation
    layers = all_layers(ElasticSpace(cfg.space), data.input_shape, data.num_classes)
    t_table = time.perf_counter()
    with bar("latency table (layers)", len(layers)) as b:
        table = CostTable.measure(layers, ev.latency_repeats, ev.latency_warmup, 1,
                                  on_layer=lambda key: b.advance(info=key))
    table.meta = {"input_shape": list(data.input_shape), "num_classes": data.num_classes}
    table.save(Path(cfg.supernet.out_dir) / TABLE_FILE)
    save_supernet(net, cfg, data, log, cfg.supernet.out_dir)
    meta_path = Path(cfg.supernet.out_dir) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["cost_table"] = {"file": TABLE_FILE, "layers": len(table.entries), "device": table.device,
                          "seconds": time.perf_counter() - t_table}
    meta["seconds"] = time.perf_counter() - t0
    meta["final"] = log[-1]
    atomic_write_json(meta_path, meta)
    return meta


def _check_space(cfg: Config, bundle) -> None:
    if bundle.meta["space"] != cfg.space.model_dump():
        raise ConfigError("params 'space' differs from the space the supernet was trained on; "
                          "rerun `evonas stage pretrain` (or `dvc repro`)")


# ---------------------------------------------------------------------------- surrogate


def _evaluate_with_bar(pool, evaluator, genomes: list[Genome], label: str) -> list[EvaluationResult]:
    out = []
    with bar(label, len(genomes)) as b:
        for r in pool.iter_evaluate(evaluator, genomes):
            out.append(r)
            b.advance(info=f"acc {r.metrics.get('val_accuracy', float('nan')):.3f}" if r.ok else "failed")
    return out


def sample_subnets(cfg: Config) -> list[EvaluationResult]:
    """Score ``surrogate.n_samples`` subnets (largest, smallest, random) with inherited weights on Dask."""
    from nas.factory import build_evaluator, build_pool
    from nas.supernet import load_supernet

    bundle = load_supernet(cfg.supernet.out_dir)
    _check_space(cfg, bundle)
    space = bundle.space
    rng = np.random.default_rng([cfg.seed, 1])
    extremes = [space.largest(), space.smallest()]
    genomes = extremes + fresh_samples(space, rng, cfg.surrogate.n_samples - 2, extremes)
    with build_pool(cfg) as pool:
        results = _evaluate_with_bar(pool, build_evaluator(cfg), genomes, "surrogate samples")
    order = {g: i for i, g in enumerate(genomes)}
    return sorted(results, key=lambda r: order[r.genome])  # completion order never leaks into outputs


def predicted(cfg: Config) -> list[str]:
    """What the surrogate predicts: the search's validation score alone. Params and FLOPs are
    exact and latency comes from the measured per-layer table for every candidate (MSuNAS,
    Once-for-All): nothing else needs a model."""
    return [cfg.search.accuracy_objective]


def latency_table_check(cfg: Config, bundle, genomes: list[Genome]) -> dict:
    """Rank correlation between the cost table's latency and a direct batch-1 measurement of the
    built subnets (1 torch thread, as on the Dask workers)."""
    from nas.spaces.elastic_build import extract_subnet
    from nas.training import torch_threads

    ev = cfg.evaluation
    with torch_threads(1):
        measured = [measure_latency_ms(extract_subnet(bundle.net, g), tuple(bundle.meta["input_shape"]),
                                       ev.latency_repeats, ev.latency_warmup) for g in genomes]
    table = [bundle.costs(g)["latency_ms"] for g in genomes]
    return {"n": len(genomes), **rank_metrics(np.array(measured), np.array(table)),
            "mean_measured_ms": float(np.mean(measured)), "mean_table_ms": float(np.mean(table)),
            "device": bundle.table.device}


def fit_surrogate(cfg: Config, samples: list[EvaluationResult], seconds_so_far: float) -> dict:
    from nas.supernet import load_supernet

    bundle = load_supernet(cfg.supernet.out_dir)
    space = bundle.space
    ok = [r for r in samples if r.ok]
    if len(ok) < 8:
        raise RuntimeError(f"only {len(ok)} of {len(samples)} surrogate samples evaluated successfully; "
                           "see the errors in artifacts/surrogate/samples.json")
    x = np.array([space.encode(r.genome) for r in ok])
    targets = predicted(cfg)
    ys = {m: np.array([r.metrics[m] for r in ok]) for m in targets}
    rng = np.random.default_rng([cfg.seed, 2])
    perm = rng.permutation(len(ok))
    n_hold = max(3, int(round(cfg.surrogate.holdout_fraction * len(ok))))
    hold, train = perm[:n_hold], perm[n_hold:]
    s = cfg.surrogate
    model = MultiObjectiveSurrogate(targets, s.models, s.ensemble_size, s.cv_folds, cfg.seed)
    model.fit(x[train], {m: v[train] for m, v in ys.items()})
    pred = model.predict(x[hold])
    heldout = {m: rank_metrics(ys[m][hold], pred[m]) for m in targets}
    latency = latency_table_check(cfg, bundle, [ok[i].genome for i in hold])
    report = {
        "n_samples": len(samples), "n_ok": len(ok), "n_train": len(train), "n_holdout": len(hold),
        "heldout": heldout, "latency_table": latency,
        "predicts": targets[0],
        "kendall_tau": heldout[targets[0]]["kendall_tau"], "spearman": heldout[targets[0]]["spearman"],
        "models": model.summary(),
        "seconds": seconds_so_far,
    }
    out = Path(s.out_dir)
    atomic_write_text(out / "samples.json", json.dumps([
        {"candidate_id": r.candidate_id, "genome": r.genome.payload(), "status": r.status, "error": r.error,
         "metrics": r.metrics, "eval_seconds": r.eval_seconds, "worker": r.worker} for r in samples], indent=1))
    atomic_write_json(out / "surrogate.json", report)
    atomic_write_json(Path(cfg.selection.reports_dir) / "surrogate.json", {
        "predicts": targets[0], "kendall_tau": report["kendall_tau"], "spearman": report["spearman"], "heldout": heldout,
        "latency_table": latency, "n_train": len(train), "n_holdout": len(hold)})
    return report


def load_prior(cfg: Config) -> list[tuple[Genome, dict[str, float]]]:
    path = Path(cfg.surrogate.out_dir) / "samples.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no surrogate samples (run `evonas stage surrogate` first)")
    rows = json.loads(path.read_text())
    prior = [(Genome(tuple(r["genome"])), r["metrics"]) for r in rows if r["status"] == "ok"]
    missing = sorted({o for o in cfg.search.objectives for _, m in prior if o not in m})
    if missing:
        raise ConfigError(f"{path}: the surrogate samples have no {', '.join(missing)} (scored before these "
                          "search.objectives or by older code); rerun `evonas stage surrogate`")
    return prior


# ---------------------------------------------------------------------------- search


def objective_bounds(objectives: list[str], prior: list[tuple[Genome, dict[str, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed normalisation box for hypervolume: ideal 0 (accuracy 1), nadir = the worst value
    seen among the surrogate stage's samples (accuracy: the lowest sampled accuracy)."""
    ideal, nadir = [], []
    for o in objectives:
        vals = np.array([m[o] for _, m in prior]) if prior else np.array([0.0, 1.0])
        if o in MAXIMISE:
            ideal.append(-1.0)
            nadir.append(-float(vals.min()))
        else:
            ideal.append(0.0)
            nadir.append(float(vals.max()))
    return np.array(ideal), np.array(nadir)


def table_bounds(cfg: Config, evaluator) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation box for a table: the signal's and each cost column's range over the whole
    table; builder costs (params, flops) from 0 to the largest network's value."""
    table = evaluator.table()
    largest = None
    ideal, nadir = [], []
    for o in cfg.search.objectives:
        if o == "val_accuracy":
            ideal.append(-float(table.signal.max()))
            nadir.append(-float(table.signal.min()))
        elif o in table.costs:
            ideal.append(float(table.costs[o].min()))
            nadir.append(float(table.costs[o].max()))
        else:
            from nas.factory import build_space

            largest = largest or evaluator.metrics(build_space(cfg).largest(), 0)
            ideal.append(0.0)
            nadir.append(float(largest[o]))
    return np.array(ideal), np.array(nadir)


def builder_bounds(cfg: Config, space) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation box without samples: accuracy in [0, 1]; costs from 0 to the largest
    network's value (built, not trained)."""
    from nas.evaluators.standalone import build_model

    data = load_prepared(cfg.data.out_dir)
    ev = cfg.evaluation
    if data.is_multitask or cfg.space.multitask != "none":
        from nas.evaluators.standalone import multitask_costs

        net = build_model(cfg.space, space.largest(), data.input_shape[0], data.num_classes, data.input_shape,
                          task_classes=data.task_num_classes)
        largest = multitask_costs(net, data.input_shape, data.n_tasks, ev.latency_repeats, ev.latency_warmup)
    else:
        net = build_model(cfg.space, space.largest(), data.input_shape[0], data.num_classes, data.input_shape)
        largest = cost_metrics(net, data.input_shape, ev.latency_repeats, ev.latency_warmup)
    ideal = [-1.0 if o in MAXIMISE else 0.0 for o in cfg.search.objectives]
    nadir = [0.0 if o in MAXIMISE else float(largest[o]) for o in cfg.search.objectives]
    return np.array(ideal), np.array(nadir)


def failure_counts(results: list[EvaluationResult]) -> dict[str, int]:
    """Failed and timed-out candidates by reason (the exception type, or what went wrong)."""
    out: dict[str, int] = {}
    for r in results:
        if r.ok:
            continue
        err = (r.error or "").split("\n")[0]
        if r.status == "timeout":
            reason = "timeout"
        elif err.startswith("evaluation lost"):
            reason = "worker lost"
        elif err.startswith("non-finite"):
            reason = "non-finite metric"
        else:
            reason = err.split(":")[0] or "unknown"
        out[reason] = out.get(reason, 0) + 1
    return dict(sorted(out.items()))


def discard_checkpoint(cfg: Config) -> str | None:
    """Make the next search of ``cfg`` start afresh: its run folder (checkpoint, journal) and
    population snapshots are moved aside to ``<run folder>.<UTC time>``, never deleted.
    Returns where they went (None when there was no run)."""
    from nas.checkpoint import search_checkpointer

    moved = search_checkpointer(cfg).move_aside(Path(cfg.search.out_dir) / "populations")
    return str(moved) if moved else None


def run_search(cfg: Config, resume: bool | None = False, log=None, progress=None) -> dict:
    """Run the search stage. ``resume``: see :func:`nas.checkpoint.resume_decision` (the CLI's
    ``--resume/--fresh``; the flows' ``resume`` parameter, auto by default). ``progress``, if
    given, is called after every generation with ``{"evaluated", "budget", "generation",
    "hypervolume", "generations"}`` (the flows turn it into Prefect artifacts)."""
    from nas.checkpoint import CHOICES, CheckpointError, past_budget, resume_decision, search_checkpointer
    from nas.factory import build_evaluator, build_pool, build_strategy
    from nas.progress import console

    t0 = time.perf_counter()
    s = cfg.search
    say = log or console.print
    checkpointer = search_checkpointer(cfg)
    do_resume, why = resume_decision(cfg, resume, checkpointer)
    if do_resume and (longer := past_budget(cfg, checkpointer.load())):
        moved = checkpointer.move_aside(Path(s.out_dir) / "populations")
        do_resume, why = False, f"the run of these params in {checkpointer.dir} holds {longer}: moved it to {moved}; " \
                                "starting afresh"
    elif not do_resume and checkpointer.exists():
        moved = checkpointer.move_aside(Path(s.out_dir) / "populations")
        why += f"; the earlier run was moved to {moved}"
    if resume is not False or checkpointer.exists():
        say(f"search: {why}")
    from nas.backends import backend

    evaluator = build_evaluator(cfg)
    setup = backend(cfg).search_setup(cfg, evaluator)
    space, prior, ideal, nadir, exact_costs = setup.space, setup.prior, setup.ideal, setup.nadir, setup.exact_costs
    if s.mode == "async":
        total, label = s.async_budget, f"search ({s.strategy}, async K={s.async_.in_flight} M={s.async_.batch})"
    else:
        total, label = s.population * (s.generations + 1), f"search ({s.strategy}, {s.generations + 1} generations)"

    def on_generation(gen: int, batch) -> None:
        if progress is not None:
            log_ = runner.generation_log
            progress({"evaluated": sum(g["evaluated"] for g in log_), "budget": total, "generation": gen,
                      "hypervolume": log_[-1]["hypervolume"] if log_ else None, "generations": list(log_)})

    def make_runner(pool, on_result, resume_now: bool):
        strategy = build_strategy(cfg, space, prior, exact_costs)
        tracker = HypervolumeTracker(s.objectives, s.constraints, ideal, nadir)
        if s.mode == "async":
            return AsyncRunner(strategy, pool, evaluator, total, s.async_.in_flight, s.async_.batch, s.out_dir,
                               tracker, drain=s.async_.drain, on_result=on_result, on_generation=on_generation,
                               checkpointer=checkpointer, resume=resume_now)
        return GenerationalRunner(strategy, pool, evaluator, s.population, s.generations, s.out_dir, tracker,
                                  on_result=on_result, on_generation=on_generation, checkpointer=checkpointer,
                                  resume=resume_now, checkpoint_every=s.checkpoint_every)

    with build_pool(cfg) as pool, bar(label, total) as b:
        n_workers = pool.n_workers
        on_result = lambda r: b.advance(info=f"hv {runner.tracker.history[-1]['hypervolume']:.4f}")  # noqa: E731
        runner = make_runner(pool, on_result, do_resume)
        t_eval = time.perf_counter()
        try:
            results = runner.run()
        except CheckpointError as exc:  # replay failed: before any evaluation, nothing touched
            msg = str(exc) if CHOICES in str(exc) else f"{exc}. {CHOICES}"
            raise CheckpointError(f"search: cannot resume the run in {checkpointer.dir}: {msg}") from None
        tracker = runner.tracker
        eval_span = time.perf_counter() - t_eval
    wall = time.perf_counter() - t0
    # an adaptive cluster starts at its minimum and grows: count the workers that evaluated too. On a
    # resumed run only this process's evaluations count here: the rest ran on earlier workers, in time
    # outside eval_span
    now = runner.evaluated_now
    n_workers = max(n_workers, len({r.worker for r in now if r.worker}))
    busy, busy_now = sum(r.eval_seconds for r in results), sum(r.eval_seconds for r in now)
    eval_wall = sum(g["evaluate_wall_seconds"] for g in runner.generation_log)
    summary = {
        "strategy": s.strategy, "mode": s.mode, "objectives": s.objectives, "constraints": s.constraints,
        "n_evaluated": len(results), "n_failed": sum(r.status == "failed" for r in results),
        "n_timeout": sum(r.status == "timeout" for r in results), "failures": failure_counts(results),
        "resumed_from_generation": runner.resumed_from, "reused_from_journal": runner.reused,
        "evaluated_this_run": len(now),
        "workers": n_workers,
        "ideal": ideal.tolist(), "nadir": nadir.tolist(),
        "final_hypervolume": tracker.history[-1]["hypervolume"] if tracker.history else 0.0,
        "generations": runner.generation_log,
        "evaluation_busy_seconds": busy, "evaluation_wall_seconds": eval_wall,
        "worker_utilization": busy_now / (n_workers * eval_span) if n_workers and eval_span > 0 else None,
        "strategy_seconds": sum(g["ask_seconds"] for g in runner.generation_log),
        "seconds": wall,
    }
    if s.mode == "async":
        summary["async"] = {"in_flight": s.async_.in_flight, "batch": s.async_.batch, "drain": s.async_.drain,
                            "budget": total, "cancelled": len(runner.cancelled),
                            "late_results": sum(bool(r.extra.get("late")) for r in results)}
    atomic_write_json(Path(s.out_dir) / "summary.json", summary)
    snapshot = getattr(runner.strategy, "snapshot", None)
    if snapshot is not None:  # CoDeepNEAT: the final module and blueprint populations, readable
        atomic_write_json(Path(s.out_dir) / f"{s.strategy}_populations.json", snapshot())
    hv = pd.DataFrame(tracker.history)
    atomic_write_text(Path(cfg.selection.reports_dir) / "hypervolume.csv", hv.to_csv(index=False))
    return summary


# ---------------------------------------------------------------------------- select


def select_own(cfg: Config) -> dict:
    """The select stage of an evaluation kind that selects its own way (``Backend.own_select``:
    weight-agnostic networks, :mod:`nas.wann.select`); returns the run's metrics."""
    from nas.backends import backend

    return backend(cfg).select(cfg)


def pareto_front(cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All evaluated candidates (deduplicated) and the non-dominated feasible ones among them."""
    df = read_populations(Path(cfg.search.out_dir) / "populations")
    df = df.drop_duplicates("candidate_id").reset_index(drop=True)
    objectives, constraints = cfg.search.objectives, cfg.search.constraints
    ok = df[(df.status == "ok")].copy()
    ok = ok[[feasible(row, constraints) for row in ok.to_dict("records")]]
    if ok.empty:
        raise RuntimeError("no feasible successfully evaluated candidate: relax search.constraints or "
                           "check the errors in artifacts/search/populations/")
    F = np.array([to_minimise(row, objectives) for row in ok.to_dict("records")])
    front = ok.iloc[non_dominated(F)].copy()
    front = front.sort_values([cfg.search.accuracy_objective, "params"], ascending=[False, True]).reset_index(drop=True)
    return df, front


def clear_models(cfg: Config) -> None:
    """Remove the previous run's exported models so the folder holds exactly this selection."""
    models = Path(cfg.selection.out_dir) / "models"
    if models.is_dir():
        for f in models.iterdir():
            if f.suffix in (".onnx", ".pt2", ".json", ".png") or f.name.startswith("."):
                f.unlink()


def choose(cfg: Config, front: pd.DataFrame) -> dict[str, list[str]]:
    """candidate_id -> the selection rules that picked it."""
    objectives = cfg.search.objectives
    F = np.array([to_minimise(row, objectives) for row in front.to_dict("records")])
    score = front[cfg.search.accuracy_objective].to_numpy()
    picks: dict[str, list[str]] = {}

    def add(i: int, rule: str) -> None:
        picks.setdefault(front.candidate_id.iloc[i], []).append(rule)

    for rule in cfg.selection.rules:
        if rule == "knee":
            add(knee_point(F), "knee")
        elif rule == "best_accuracy":
            add(int(np.argmax(score)), "best_accuracy")
        elif rule == "best_under_constraints":
            for c in cfg.selection.constraints:
                mask = [feasible(r, c) for r in front.to_dict("records")]
                if any(mask):
                    idx = np.flatnonzero(mask)
                    add(int(idx[np.argmax(score[idx])]),
                        "best_under:" + ",".join(f"{k}={v:g}" for k, v in c.items()))
        elif rule == "spread":
            for i in spread_points(F, cfg.selection.n_spread):
                add(i, "spread")
    return picks


def table_card(cfg: Config, row: dict, rules: list[str]) -> dict:
    """Model card of a table-evaluated candidate: the table's report column is its test accuracy.
    Tables hold no weights, so nothing is exported besides the card."""
    from nas.factory import build_space
    from nas.export import write_model_card

    space = build_space(cfg)
    genome = Genome.from_json(row["genome"], space.name)
    t = cfg.evaluation.table
    card = {
        "candidate_id": row["candidate_id"], "genome": genome.payload(), "space": genome.space,
        "architecture": space.describe(genome), "selected_by": rules,
        "val_accuracy": float(row["val_accuracy"]), "test_accuracy": float(row["report_accuracy"]),
        "signal_column": t.signal_column, "report_column": t.report_column, "table": t.path,
        "base_seed": cfg.seed,
        **{c: float(row[c]) for c in t.cost_columns if c in row},
    }
    write_model_card(Path(cfg.selection.out_dir) / "models" / f"{row['candidate_id']}.json", card)
    return card


def finetune_and_export(cfg: Config, row: dict, rules: list[str]) -> dict:
    """One selected model, tested and exported, as its evaluation kind does it
    (:meth:`nas.backends.Backend.finalize`): a table's card from the table; otherwise
    :func:`train_and_export`."""
    from nas.backends import backend

    return backend(cfg).finalize(cfg, row, rules)


def train_and_export(cfg: Config, row: dict, rules: list[str]) -> dict:
    """Extract the subnet (or build the network), fine-tune (or train) it stand-alone, score it
    on test, export ONNX/pt2/card."""
    import torch

    from nas.factory import build_space
    from nas.training import resolve_device, torch_threads

    t0 = time.perf_counter()
    data = load_prepared(cfg.data.out_dir)
    space = build_space(cfg)
    genome = Genome.from_json(row["genome"], space.name)
    seed = candidate_seed(cfg.seed, genome)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = resolve_device(cfg.evaluation.device)
    if data.is_multitask or cfg.space.multitask != "none":
        with torch_threads():
            return _train_and_export_multitask(cfg, row, rules, data, space, genome, seed, rng, device, t0)
    with torch_threads():
        net = _finetuned(cfg, data, genome, seed, rng, device)
    return _export_single(cfg, row, rules, data, space, genome, seed, net, device, t0)


def _finetuned(cfg: Config, data, genome: Genome, seed: int, rng: np.random.Generator, device):
    """A selected single-task network, trained as its evaluation kind does it
    (:meth:`nas.backends.Backend.selected_network`)."""
    from nas.backends import backend

    return backend(cfg).selected_network(cfg, data, genome, seed, rng, device)


def _export_single(cfg: Config, row: dict, rules: list[str], data, space, genome: Genome, seed: int, net, device,
                   t0: float) -> dict:
    from nas.export import export_onnx, export_program, onnx_max_abs_diff, write_model_card
    from nas.training import accuracy

    sel, ev = cfg.selection, cfg.evaluation
    val = accuracy(net, data.x_val, data.y_val, device=device)
    test = accuracy(net, data.x_test, data.y_test, device=device)
    net = net.cpu().eval()
    out = Path(sel.out_dir) / "models"
    cid = row["candidate_id"]
    shape = data.input_shape
    export_onnx(net, shape, out / f"{cid}.onnx")
    export_program(net, shape, out / f"{cid}.pt2")
    onnx_diff = onnx_max_abs_diff(net, out / f"{cid}.onnx", data.x_test[:16])
    card = {
        "candidate_id": cid, "genome": genome.payload(), "space": genome.space,
        "architecture": space.describe(genome), "selected_by": rules,
        "params": count_params(net), "flops": count_flops(net, shape),
        "latency_ms": measure_latency_ms(net, shape, cfg.evaluation.latency_repeats, cfg.evaluation.latency_warmup),
        "search_val_accuracy": float(row["val_accuracy"]), "evaluation": ev.kind,
        "val_accuracy": val, "test_accuracy": test, "finetune_epochs": sel.finetune_epochs,
        "dataset_hash": data.dataset_hash, "seed": seed, "base_seed": cfg.seed,
        "input_shape": [1, *shape], "class_names": data.class_names,
        "input_normalisation": {"mean": data.mean, "std": data.std,
                                "formula": "x = (pixels scaled to [0, 1] - mean) / std"},
        "onnx_max_abs_diff": onnx_diff,
        "files": {"onnx": f"{cid}.onnx", "torch_export": f"{cid}.pt2"},
    }
    write_model_card(out / f"{cid}.json", card)
    card["seconds"] = time.perf_counter() - t0
    return card


def _task_file(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _train_and_export_multitask(cfg: Config, row: dict, rules: list[str], data, space, genome: Genome, seed: int,
                                rng: np.random.Generator, device, t0: float) -> dict:
    """A selected multi-task network: trained from scratch on every task jointly for the
    search budget plus fine-tuning, scored per task, exported as one model per task
    (``<id>_<task>.onnx`` / ``.pt2``, each a plain one-input model)."""
    from nas.evaluators.standalone import build_model, multitask_costs
    from nas.export import export_onnx, export_program, onnx_max_abs_diff, write_model_card
    from nas.spaces.multitask_build import TaskView
    from nas.training import accuracy_by_task, train_multitask

    sel, ev = cfg.selection, cfg.evaluation
    net = build_model(cfg.space, genome, data.input_shape[0], data.num_classes, data.input_shape, ev.init, seed,
                      task_classes=data.task_num_classes).to(device)
    from nas.meta.components import recipe

    train_multitask(net, data.x_train, data.y_train, data.t_train, data.n_tasks, ev.train_epochs + sel.finetune_epochs,
                    ev.train_lr, ev.train_batch_size, rng, device, recipe=recipe(cfg))
    val = accuracy_by_task(net, data.x_val, data.y_val, data.t_val, data.n_tasks, device=device)
    test = accuracy_by_task(net, data.x_test, data.y_test, data.t_test, data.n_tasks, device=device)
    net = net.cpu().eval()
    out = Path(sel.out_dir) / "models"
    cid, shape = row["candidate_id"], data.input_shape
    files, diffs = {}, {}
    for k, task in enumerate(data.tasks):
        view, stem = TaskView(net, k), f"{cid}_{_task_file(task)}"
        export_onnx(view, shape, out / f"{stem}.onnx")
        export_program(view, shape, out / f"{stem}.pt2")
        sample = data.x_test[data.t_test == k][:16]
        diffs[task] = onnx_max_abs_diff(view, out / f"{stem}.onnx", sample) if len(sample) else 0.0
        files[f"onnx:{task}"], files[f"torch_export:{task}"] = f"{stem}.onnx", f"{stem}.pt2"
    card = {
        "candidate_id": cid, "genome": genome.payload(), "space": genome.space, "multitask": cfg.space.multitask,
        "architecture": space.describe(genome), "selected_by": rules, "tasks": list(data.tasks),
        "task_classes": [list(c) for c in data.task_classes],
        **multitask_costs(net, shape, data.n_tasks, ev.latency_repeats, ev.latency_warmup),
        "search_val_accuracy": float(row["val_accuracy"]), "evaluation": ev.kind,
        "val_accuracy": float(np.mean(val)), "test_accuracy": float(np.mean(test)),
        "per_task_val_accuracy": dict(zip(data.tasks, map(float, val))),
        "per_task_test_accuracy": dict(zip(data.tasks, map(float, test))),
        "finetune_epochs": sel.finetune_epochs, "dataset_hash": data.dataset_hash, "seed": seed, "base_seed": cfg.seed,
        "input_shape": [1, *shape],
        "input_normalisation": {"mean": data.mean, "std": data.std,
                                "formula": "x = (pixels scaled to [0, 1] - mean) / std"},
        "onnx_max_abs_diff": max(diffs.values()) if diffs else 0.0,
        "files": files,
        "usage": "one exported model per task: <id>_<task>.onnx takes a batch of images and returns that task's logits",
    }
    if hasattr(space, "sharing"):
        card["sharing"] = space.sharing(genome)
    write_model_card(out / f"{cid}.json", card)
    card["seconds"] = time.perf_counter() - t0
    return card


def plot_front(path: Path, all_df: pd.DataFrame, front: pd.DataFrame, objectives: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nas.config import ACCURACY_OBJECTIVES, accuracy_objective

    acc = accuracy_objective(objectives)
    costs = [o for o in objectives if o not in ACCURACY_OBJECTIVES] or ["params"]
    fig, axes = plt.subplots(1, len(costs), figsize=(5 * len(costs), 4), squeeze=False)
    ok = all_df[all_df.status == "ok"]
    for ax, c in zip(axes[0], costs):
        ax.scatter(ok[c], ok[acc], s=10, c="lightgray", label="evaluated")
        ax.scatter(front[c], front[acc], s=14, c="tab:blue", alpha=0.35, label="non-dominated (all objectives)")
        # the front of this 2-D projection: non-dominated in (accuracy, this cost), joined as a staircase
        f = front.iloc[non_dominated(np.column_stack([-front[acc].to_numpy(), front[c].to_numpy()]))]
        f = f.sort_values(c)
        ax.step(f[c], f[acc], "o-", where="post", ms=4, c="tab:blue",
                label=f"non-dominated in {acc} vs {c}")
        s = front[front.selected]
        ax.scatter(s[c], s[acc], s=90, facecolors="none", edgecolors="tab:red", linewidths=2,
                   label="selected")
        ax.set_xlabel(c)
        ax.set_ylabel(f"{acc} (search signal)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="lower right")
    fig.suptitle(f"Pareto front over {len(ok)} evaluated subnets")
    atomic_save_figure(fig, path)


def write_selection(cfg: Config, all_df: pd.DataFrame, front: pd.DataFrame, picks: dict[str, list[str]],
                    cards: list[dict], select_seconds: float) -> dict:
    sel = cfg.selection
    by_id = {c["candidate_id"]: c for c in cards}
    front = front.copy()
    front["selected"] = front.candidate_id.isin(picks)
    front["selected_by"] = [";".join(picks.get(c, [])) for c in front.candidate_id]
    front["test_accuracy"] = [by_id[c]["test_accuracy"] if c in by_id else np.nan for c in front.candidate_id]
    front["finetuned_val_accuracy"] = [by_id[c]["val_accuracy"] if c in by_id else np.nan for c in front.candidate_id]
    cols = ["candidate_id", "genome", "val_accuracy", "params", "flops", "latency_ms", *cfg.search.objectives,
            "report_accuracy", "selected", "test_accuracy", "finetuned_val_accuracy", "selected_by", "generation",
            "worker", "eval_seconds"]
    cols[3:3] = [c for c in front.columns if c.startswith("val_acc:")]  # multi-task: each task's accuracy
    front = front[[c for c in dict.fromkeys(cols) if c in front.columns]]
    atomic_write_text(Path(sel.out_dir) / "pareto.csv", front.to_csv(index=False))
    if cfg.space.kind == "codeepneat":
        write_graph_front(cfg, front)
    reports = Path(sel.reports_dir)
    plot_front(reports / "pareto.png", all_df, front, cfg.search.objectives)

    summary = json.loads((Path(cfg.search.out_dir) / "summary.json").read_text())
    ok = all_df[all_df.status == "ok"]
    F = np.array([to_minimise(r, cfg.search.objectives) for r in front.to_dict("records")])
    hv = hypervolume(F, np.array(summary["ideal"]), np.array(summary["nadir"]))
    from nas.backends import backend

    stage_seconds = {}
    used = backend(cfg).stages
    if "prepare" in used:
        stage_seconds["prepare"] = _seconds(Path(cfg.data.out_dir) / "meta.json")
    if "pretrain" in used:
        stage_seconds["pretrain"] = _seconds(Path(cfg.supernet.out_dir) / "meta.json")
    if "surrogate" in used:
        stage_seconds["surrogate"] = _seconds(Path(cfg.surrogate.out_dir) / "surrogate.json")
    stage_seconds.update(search=summary["seconds"], select=select_seconds)
    metrics = {
        "n_evaluated": int(len(all_df)), "n_failed": int((all_df.status == "failed").sum()),
        "n_timeout": int((all_df.status == "timeout").sum()), "failures": summary.get("failures", {}),
        "resumed_from_generation": summary.get("resumed_from_generation"),
        "n_pareto": int(len(front)), "n_selected": int(front.selected.sum()),
        "hypervolume": hv,
        "best_val_accuracy": float(ok.val_accuracy.max()),
        **reported_model(cards),
        "wall_seconds": float(sum(v for v in stage_seconds.values() if v is not None)),
        "stage_seconds": stage_seconds,
        "search_evaluation_busy_seconds": summary["evaluation_busy_seconds"],
        "search_evaluation_wall_seconds": summary["evaluation_wall_seconds"],
        **cfg.run_identity(),
    }
    per_task = {c["candidate_id"]: c["per_task_test_accuracy"] for c in cards if "per_task_test_accuracy" in c}
    if per_task:
        metrics["per_task_test_accuracy"] = per_task
    atomic_write_json(reports / "metrics.json", metrics)
    return metrics


REPORT_RULE = ("best_accuracy: of the selected models, the one with the highest validation accuracy after "
               "fine-tuning (ties: fewer parameters); the test split chooses nothing")


def reported_model(cards: list[dict]) -> dict:
    """The figures a run reports: the test accuracy of the one model chosen by validation
    (:data:`REPORT_RULE`), next to every selected model's own validation and test accuracy."""
    selected = [{"candidate_id": c["candidate_id"], "selected_by": c["selected_by"],
                 "params": c.get("params"), "val_accuracy": float(c["val_accuracy"]),
                 "test_accuracy": float(c["test_accuracy"])} for c in cards]
    if not selected:
        return {"report_rule": REPORT_RULE, "reported_model": None, "test_accuracy": None, "selected_models": []}
    best = max(selected, key=lambda m: (m["val_accuracy"], -(m["params"] or 0), m["candidate_id"]))
    return {"report_rule": REPORT_RULE, "reported_model": best["candidate_id"],
            "test_accuracy": best["test_accuracy"], "reported_val_accuracy": best["val_accuracy"],
            "selected_models": selected}


def write_graph_front(cfg: Config, front: pd.DataFrame) -> Path:
    """The blueprint and modules of every network on the front, readable, in
    ``<selection.out_dir>/codeepneat_front.json``."""
    from nas.factory import build_space

    space = build_space(cfg)
    rows = []
    for r in front.to_dict("records"):
        genome = Genome.from_json(r["genome"], space.name)
        rows.append({"candidate_id": r["candidate_id"],
                     **{m: _plain(r[m]) for m in r if m in ("val_accuracy", "params", "flops", "latency_ms",
                                                          "test_accuracy", "selected") or m.startswith("val_acc:")},
                     "architecture": space.describe(genome), **space.readable(genome)})
        if hasattr(space, "sharing"):
            rows[-1]["sharing"] = space.sharing(genome)
    path = Path(cfg.selection.out_dir) / "codeepneat_front.json"
    atomic_write_json(path, rows)
    return path


def _plain(v):
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    v = float(v)
    return None if v != v else v


def _seconds(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text()).get("seconds"))
    except (OSError, ValueError, TypeError):
        return None


def pareto_table(cfg: Config) -> pd.DataFrame:
    path = Path(cfg.selection.out_dir) / "pareto.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no Pareto table yet (run `evonas run` or `evonas stage select`)")
    return pd.read_csv(path)



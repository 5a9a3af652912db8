"""One Prefect flow per pipeline stage, each composed of thin tasks from ``tasks``."""

from __future__ import annotations

import time

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.interrupt import mark
from nas.config import Config
from tasks import stages as t


def run_name(stage: str):
    """A flow-run name from the run's settings: ``<stage>-<space>-<strategy>[-async]-seed<N>``."""

    def name() -> str:
        from prefect.runtime import flow_run

        cfg = flow_run.parameters.get("cfg")
        try:
            if cfg is None:
                from nas.config import load_config

                cfg = load_config(flow_run.parameters.get("params_file", "params.yaml"))
            cfg = cfg if isinstance(cfg, Config) else Config.model_validate(cfg)
            mode = "-async" if cfg.search.mode == "async" else ""
            return f"{stage}-{cfg.space.kind}-{cfg.search.strategy}{mode}-seed{cfg.seed}"
        except Exception:  # naming must never fail a run
            return stage

    return name


def run_tags(cfg: Config) -> list[str]:
    """Tags for every flow run of a pipeline (filterable in the Prefect UI)."""
    return ["evonas", f"space:{cfg.space.kind}", f"strategy:{cfg.search.strategy}", f"mode:{cfg.search.mode}",
            f"evaluation:{cfg.evaluation.kind}", f"seed:{cfg.seed}"]


@flow(name="prepare", flow_run_name=run_name("prepare"), log_prints=False)
def prepare_flow(cfg: Config) -> dict:
    mark("the prepare stage")
    t0 = time.perf_counter()
    data = t.prepare_data(cfg)
    return t.write_prepared(cfg, data, time.perf_counter() - t0)


@flow(name="pretrain", flow_run_name=run_name("pretrain"), log_prints=False)
def pretrain_flow(cfg: Config) -> dict:
    mark("the pretrain stage")
    return t.pretrain_supernet(cfg)


@flow(name="surrogate", flow_run_name=run_name("surrogate"), log_prints=False)
def surrogate_flow(cfg: Config) -> dict:
    mark("the surrogate stage")
    t0 = time.perf_counter()
    samples = t.sample_subnets(cfg)
    return t.fit_surrogate(cfg, samples, time.perf_counter() - t0)


@flow(name="search", flow_run_name=run_name("search"), log_prints=False)
def search_flow(cfg: Config, resume: bool | None = None) -> dict:
    """``resume``: None (default) resumes when a checkpoint made with the same search params
    exists, True insists (a checkpoint from other params fails the run), False starts afresh.

    While the search runs, the ``search-progress`` artifact shows evaluations done / budget
    and a new version of ``hypervolume-per-generation`` appears after every generation."""
    mark("the search stage")
    if resume is False:
        t.discard_checkpoint(cfg)
    return t.run_search(cfg, resume=True if resume else None, progress=_progress_reporter(cfg))


def _progress_reporter(cfg: Config):
    """A callback for ``nas.stages.run_search``: Prefect artifacts updated as generations close."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    state: dict = {"id": None}

    def report(info: dict) -> None:
        pct = 100.0 * min(1.0, info["evaluated"] / max(1, info["budget"]))
        try:
            if state["id"] is None:
                state["id"] = create_progress_artifact(
                    pct, key="search-progress",
                    description=f"search ({cfg.search.strategy}, {cfg.search.mode}): evaluations done / budget")
            else:
                update_progress_artifact(state["id"], pct)
            create_table_artifact(key="hypervolume-per-generation", table=[
                {"generation": g["generation"], "evaluated": g["evaluated"], "failed": g["failed"],
                 "hypervolume": g["hypervolume"]} for g in info["generations"]],
                description=f"Hypervolume after each generation ({info['evaluated']}/{info['budget']} evaluated)")
        except Exception:  # noqa: BLE001 - progress display must never fail a search
            pass

    return report


@flow(name="select", flow_run_name=run_name("select"), log_prints=False)
def select_flow(cfg: Config) -> dict:
    mark("the select stage")
    from nas.backends import backend

    if backend(cfg).own_select:  # weight-agnostic networks: chosen, tuned and reported their own way
        metrics = t.select_own(cfg)
        create_markdown_artifact(key="run-summary", markdown=f"# evonas run (seed {cfg.seed}, strategy "
                                 f"{cfg.search.strategy})\n\n{metrics['headline']}\n")
        return metrics
    t0 = time.perf_counter()
    all_df, front = t.pareto_front(cfg)
    picks = t.choose(cfg, front)
    t.clear_models(cfg)
    rows = {r["candidate_id"]: r for r in front.to_dict("records")}
    cards = [t.finetune_and_export(cfg, rows[cid], rules) for cid, rules in picks.items()]
    metrics = t.write_selection(cfg, all_df, front, picks, cards, time.perf_counter() - t0)
    table = [{k: c.get(k) for k in ("candidate_id", "architecture", "params", "flops", "latency_ms",
                                    "search_val_accuracy", "val_accuracy", "test_accuracy")}
             | {"selected_by": ", ".join(c["selected_by"])} for c in cards]
    create_table_artifact(key="pareto-front", table=[
        {k: (None if v != v else v) for k, v in r.items()}
        for r in front[[c for c in dict.fromkeys(["candidate_id", "val_accuracy", "params", "flops", "latency_ms",
                                                  *cfg.search.objectives]) if c in front.columns]].to_dict("records")],
        description=f"Non-dominated candidates ({len(front)}) over {metrics['n_evaluated']} evaluated")
    create_table_artifact(key="selected-models", table=table, description="Selected, fine-tuned and exported models")
    create_markdown_artifact(key="run-summary", markdown=_summary_markdown(cfg, metrics, cards))
    return metrics


def _summary_markdown(cfg: Config, metrics: dict, cards: list[dict]) -> str:
    lines = [f"# evonas run (seed {cfg.seed}, strategy {cfg.search.strategy})", "",
             f"- evaluated: {metrics['n_evaluated']}, non-dominated: {metrics['n_pareto']}",
             f"- hypervolume: {metrics['hypervolume']:.4f}",
             f"- test accuracy of the model chosen by validation ({metrics.get('reported_model')}, rule "
             f"best_accuracy): {metrics.get('test_accuracy')}",
             f"- models in `{cfg.selection.out_dir}/models/`", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in metrics["stage_seconds"].items() if v is not None]
    lines += ["", "| model | selected by | params | val acc | test acc |", "|---|---|---|---|---|"]
    lines += [f"| {c['candidate_id']} | {', '.join(c['selected_by'])} | {c.get('params', '')} | {c['val_accuracy']:.4f} | "
              f"{c['test_accuracy']:.4f} |" for c in cards]
    return "\n".join(lines)



STAGE_FLOWS = {
    "prepare": prepare_flow,
    "pretrain": pretrain_flow,
    "surrogate": surrogate_flow,
    "search": search_flow,
    "select": select_flow,
}

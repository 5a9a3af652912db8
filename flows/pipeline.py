"""The pipeline flow: prepare -> pretrain -> surrogate -> search -> select, one sub-flow each."""

from __future__ import annotations

from prefect import flow

from flows.stages import STAGE_FLOWS, run_name
from nas.backends import STAGES_BY_EVALUATION
from nas.config import Config


@flow(name="evonas-pipeline", flow_run_name=run_name("evonas"), log_prints=False)
def pipeline_flow(cfg: Config | None = None, resume: bool | None = None, params_file: str = "params.yaml") -> dict:
    """The whole pipeline. ``cfg``: the run's config; without it, ``params_file`` is loaded
    (what deployments made with ``prefect deploy`` from ``prefect.yaml`` do). ``resume`` goes
    to the search stage (see ``search_flow``)."""
    if cfg is None:
        from nas.config import load_config

        cfg = load_config(params_file)
    out = {}
    for name, stage in STAGE_FLOWS.items():
        if name not in STAGES_BY_EVALUATION[cfg.evaluation.kind]:
            continue
        out[name] = stage(cfg, resume) if name == "search" else stage(cfg)
    return out["select"]

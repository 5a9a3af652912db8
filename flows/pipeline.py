"""The pipeline flow: prepare -> pretrain -> surrogate -> search -> select, one sub-flow each."""

from __future__ import annotations

from prefect import flow

from flows.stages import STAGE_FLOWS, STAGES_BY_EVALUATION, run_name
from nas.config import Config


@flow(name="evonas-pipeline", flow_run_name=run_name("evonas"), log_prints=False)
def pipeline_flow(cfg: Config, resume: bool | None = None) -> dict:
    """``resume`` goes to the search stage (see ``search_flow``)."""
    out = {}
    for name, stage in STAGE_FLOWS.items():
        if name not in STAGES_BY_EVALUATION[cfg.evaluation.kind]:
            continue
        out[name] = stage(cfg, resume) if name == "search" else stage(cfg)
    return out["select"]

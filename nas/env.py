"""Offline-safe defaults for Prefect, Dask and DVC, applied before they are imported; the torch
thread count the stages use (read without importing torch, so a bad value fails at once)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
    "OMP_NUM_THREADS": "1",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # repeatable cuBLAS products on a GPU (nas.training.deterministic_cuda)
    "PREFECT_LOGGING_EXTRA_LOGGERS": "evonas",  # our log lines (e.g. the Dask dashboard address) reach the UI
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",  # ... and outside a flow run they only go to the terminal
}


def configure_environment(project_dir: str | Path | None = None) -> None:
    """Keep Prefect's state inside the project (``.prefect/``) and turn telemetry off,
    unless the user already set these variables."""
    for k, v in DEFAULTS.items():
        os.environ.setdefault(k, v)
    root = Path(project_dir) if project_dir else Path.cwd()
    os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))


THREADS_ENV = "EVONAS_TORCH_THREADS"


def default_threads() -> int:
    """Torch threads for training outside the Dask workers: ``EVONAS_TORCH_THREADS`` when set
    (a machine shared with other jobs: several runs side by side each take that many cores),
    else every CPU core."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return os.cpu_count() or 1
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{THREADS_ENV}={raw!r}: expected a whole number of threads >= 1")
    return int(raw)

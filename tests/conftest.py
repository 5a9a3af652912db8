"""Shared fixtures: a tiny configuration rooted in a temporary folder, a tiny trained supernet."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nas.env import configure_environment

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
configure_environment(ROOT)

TINY = [
    "supernet.epochs=2", "surrogate.n_samples=12", "search.population=6", "search.generations=2",
    "search.surrogate_generations=5", "search.surrogate_population=12", "selection.finetune_epochs=1",
    "selection.n_spread=2", "evaluation.latency_repeats=3", "evaluation.latency_warmup=1",
]


def tiny_config(root: Path, extra: list[str] | None = None):
    """The project's params.yaml with tiny budgets and every output under ``root``."""
    from nas.config import load_config

    outs = [f"data.out_dir={root}/data/prepared", f"supernet.out_dir={root}/artifacts/supernet",
            f"surrogate.out_dir={root}/artifacts/surrogate", f"search.out_dir={root}/artifacts/search",
            f"selection.out_dir={root}/artifacts/select", f"selection.reports_dir={root}/reports"]
    return load_config(ROOT / "params.yaml", TINY + outs + (extra or []))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Prepared digits and a supernet trained for 2 epochs (shared by the tests that need weights)."""
    from nas import stages

    root = tmp_path_factory.mktemp("trained")
    cfg = tiny_config(root)
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    stages.pretrain_supernet(cfg)
    return cfg


@pytest.fixture
def evonas_bin() -> str:
    exe = shutil.which("evonas") or str(Path(os.sys.executable).parent / "evonas")
    assert Path(exe).exists(), "the evonas console script is not installed (run make install)"
    return exe

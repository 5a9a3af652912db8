"""A search run is never lost (issue 17): its checkpoint lives in a run folder outside the
stage's outputs, a resume writes back snapshots that `dvc repro` deleted, `--fresh` and a
shorter search move the old run aside, and a checkpoint that cannot be replayed stops the
search with the two choices, touching nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from nas.checkpoint import CheckpointError, search_checkpointer
from nas.runners import read_populations
from tests.conftest import synthetic_table_sets, tiny_config

pytestmark = pytest.mark.integration


def _cfg(root: Path, table: Path, *extra: str):
    return tiny_config(root, [*synthetic_table_sets(table), "search.strategy=aging", "search.population=6",
                              "search.generations=2", "evaluation.table.sim_seconds=0", "evaluation.workers=1",
                              *extra])


def _pops(cfg) -> pd.DataFrame:
    df = read_populations(Path(cfg.search.out_dir) / "populations")
    return df[["candidate_id", "genome", "val_accuracy", "generation"]]


def _files(*dirs: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for d in dirs for p in d.rglob("*") if p.is_file()}


def test_runs_survive_deleted_outputs_fresh_starts_and_shorter_searches(synthetic, tmp_path):
    from nas import stages

    cfg = _cfg(tmp_path, synthetic)
    first = stages.run_search(cfg)
    ck = search_checkpointer(cfg)
    assert ck.exists() and Path(cfg.search.out_dir).resolve() not in ck.dir.resolve().parents
    pops = _pops(cfg)

    # `dvc repro` deletes a stage's outputs before it runs it: the run folder is elsewhere, so
    # the search resumes (nothing evaluated again) and writes the snapshots back
    shutil.rmtree(cfg.search.out_dir)
    again = stages.run_search(cfg, resume=None)
    assert again["resumed_from_generation"] == 3 and again["n_evaluated"] == first["n_evaluated"] == 18
    pd.testing.assert_frame_equal(_pops(cfg), pops)

    # --fresh moves the old run (checkpoint, journal, snapshots) aside instead of deleting it
    before = ck.path.read_bytes()
    stages.run_search(cfg, resume=False)
    (aside,) = [p for p in ck.dir.parent.iterdir() if p.name.startswith(f"{ck.dir.name}.")]
    assert (aside / "checkpoint.json").read_bytes() == before
    assert sorted(p.name for p in (aside / "populations").glob("gen_*.parquet")) == [f"gen_00{i}.parquet" for i in range(3)]
    pd.testing.assert_frame_equal(_pops(cfg), pops)  # the fresh run is the same search again

    # fewer generations than the run holds: not a resume of it; it is moved aside too
    shorter = _cfg(tmp_path, synthetic, "search.generations=1")
    assert search_checkpointer(shorter).dir == ck.dir  # generations are left out of the fingerprint
    out = stages.run_search(shorter, resume=None)
    assert out["n_evaluated"] == 12 and out["resumed_from_generation"] is None
    assert len([p for p in ck.dir.parent.iterdir() if p.name.startswith(f"{ck.dir.name}.")]) == 2

    # other params get a run folder of their own: the earlier run stays where it is
    other = _cfg(tmp_path, synthetic, "search.population=5")
    assert search_checkpointer(other).dir != ck.dir


def test_a_checkpoint_that_cannot_be_replayed_stops_and_touches_nothing(synthetic, tmp_path):
    from nas import stages

    cfg = _cfg(tmp_path, synthetic)
    stages.run_search(cfg)
    ck = search_checkpointer(cfg)
    lines = ck.events_path.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])
    first[2][0] = first[2][1]  # the first ask "proposed" something else
    ck.events_path.write_text(json.dumps(first) + "\n" + "".join(lines[1:]))
    before = _files(ck.dir.parent, Path(cfg.search.out_dir))
    for resume in (None, True):
        with pytest.raises(CheckpointError) as err:
            stages.run_search(cfg, resume=resume)
        assert "--fresh" in str(err.value) and "--resume" in str(err.value) and "moved aside" in str(err.value)
        assert _files(ck.dir.parent, Path(cfg.search.out_dir)) == before

    ck.path.write_text("{ not json")  # corrupt: the same, before anything runs
    before = _files(ck.dir.parent, Path(cfg.search.out_dir))
    with pytest.raises(CheckpointError, match="--fresh"):
        stages.run_search(cfg, resume=None)
    assert _files(ck.dir.parent, Path(cfg.search.out_dir)) == before

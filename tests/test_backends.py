"""One contract suite over every evaluation backend (nas/backends.py), Optuna's pattern: a
new evaluation kind registered in BACKENDS is tested by this file without a line added here
beyond its config."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from nas.backends import BACKENDS, STAGES, STAGES_BY_EVALUATION, Backend, MissingInput, backend
from nas.evaluators.base import Evaluator, evaluate
from tests.conftest import synthetic_table_sets, tiny_config


def _inherited(tmp_path, trained, synthetic):
    """The shared trained supernet, plus surrogate samples scored through the backend itself."""
    from nas.strategies.base import fresh_samples

    from nas.spaces.elastic import ElasticSpace

    cfg = trained
    ev = backend(cfg).evaluator(cfg)
    sp = ElasticSpace(cfg.space)
    genomes = fresh_samples(sp, np.random.default_rng(0), 4, [])
    rows = [evaluate(ev, g) for g in genomes]
    out = Path(cfg.surrogate.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples.json").write_text(json.dumps([{"candidate_id": r.candidate_id, "genome": r.genome.payload(),
                                                   "status": r.status, "metrics": r.metrics} for r in rows]))
    return cfg


def _train(tmp_path, trained, synthetic):
    from nas import stages

    cfg = tiny_config(tmp_path / "train", ["space.kind=nb201", "evaluation.kind=train", "evaluation.train_epochs=1",
                                           "space.nb201_channels=4", "space.nb201_cells=1",
                                           "search.objectives=[val_accuracy, params]"])
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    return cfg


def _table(tmp_path, trained, synthetic):
    return tiny_config(tmp_path / "table", synthetic_table_sets(synthetic))


def _wann(tmp_path, trained, synthetic):
    from nas import stages

    cfg = tiny_config(tmp_path / "wann", ["space.kind=wann", "search.objectives=[mean_score, connections]"])
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    return cfg


def _meta(tmp_path, trained, synthetic):
    from nas import stages

    cfg = tiny_config(tmp_path / "meta", ["space.kind=activation", "search.objectives=[val_accuracy]",
                                          "evaluation.meta.epochs=1", "evaluation.meta.channels=[4, 8]"])
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    return cfg


CONFIGS = {"inherited": _inherited, "train": _train, "table": _table, "wann": _wann, "meta": _meta}


def test_every_backend_has_a_contract_config():
    assert set(CONFIGS) == set(BACKENDS), "add a config for the new backend to CONFIGS"


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_backend_contract(kind, tmp_path, trained, synthetic):
    cfg = CONFIGS[kind](tmp_path, trained, synthetic)
    b = backend(cfg)
    assert isinstance(b, Backend) and b.kind == kind == cfg.evaluation.kind and BACKENDS[kind] is b

    # stages: an ordered part of the pipeline that always searches and selects
    assert list(b.stages) == [s for s in STAGES if s in b.stages] and b.stages[-2:] == ("search", "select")
    assert STAGES_BY_EVALUATION[kind] == b.stages

    # the evaluator: the Evaluator contract, shippable to Dask workers, deterministic
    ev = b.evaluator(cfg)
    assert isinstance(ev, Evaluator) and ev.base_seed == cfg.seed
    pickle.loads(pickle.dumps(ev))

    # the search setup: a space to sample from and a normalisation box per objective
    setup = b.search_setup(cfg, ev)
    g = setup.space.sample(np.random.default_rng(0))
    n = len(cfg.search.objectives)
    assert setup.ideal.shape == setup.nadir.shape == (n,) and np.all(setup.ideal <= setup.nadir)
    r1, r2 = evaluate(ev, g), evaluate(ev, g)
    assert r1.ok and set(cfg.search.objectives) <= set(r1.metrics), r1.error
    if kind != "train":  # stand-alone training measures latency: only the rest is reproducible
        assert r1.metrics == r2.metrics
    if setup.exact_costs is not None:
        exact = setup.exact_costs(g)
        assert all(exact[k] == pytest.approx(r1.metrics[k]) for k in ("params", "flops"))

    # fingerprint inputs: JSON, and they change with what the search reads
    fp = b.fingerprint_inputs(cfg)
    json.dumps(fp)
    assert fp, "a backend's search reads something besides its params"

    # concurrency: candidates share a worker process only where that cannot change a result
    b.check_pool(cfg)
    two = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"threads_per_worker": 2})})
    if b.shares_process:
        b.check_pool(two)
        from concurrent.futures import ThreadPoolExecutor

        genomes = [setup.space.sample(np.random.default_rng(i)) for i in range(6)]
        with ThreadPoolExecutor(2) as pool:
            side_by_side = list(pool.map(lambda g: evaluate(ev, g).metrics, genomes))
        assert side_by_side == [evaluate(ev, g).metrics for g in genomes]
    else:
        from nas.config import ConfigError

        with pytest.raises(ConfigError, match="threads_per_worker is 2.*evaluation.workers"):
            b.check_pool(two)

    # preflight: passes now, and names the missing file when the inputs are gone
    b.preflight(cfg, "search")
    gone = {"inherited": lambda: shutil.rmtree(cfg.surrogate.out_dir),
            "train": lambda: (Path(cfg.data.out_dir) / "data.npz").unlink(),
            "wann": lambda: (Path(cfg.data.out_dir) / "data.npz").unlink(),
            "meta": lambda: (Path(cfg.data.out_dir) / "data.npz").unlink(),
            "table": lambda: None}[kind]
    if kind != "table":
        gone()
        with pytest.raises(MissingInput, match="run `evonas stage"):
            b.preflight(cfg, "search")


def test_an_unknown_kind_is_a_clear_error():
    class Cfg:
        class evaluation:  # noqa: N801 - a stand-in for the config section
            kind = "quantum"

    with pytest.raises(ValueError, match="quantum.*known: inherited, train, table, wann"):
        backend(Cfg())

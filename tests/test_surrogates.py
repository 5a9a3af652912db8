import numpy as np
import pytest

from nas.surrogates import EnsembleSurrogate, MultiObjectiveSurrogate, rank_metrics


def test_rank_metrics():
    y = np.arange(10.0)
    assert rank_metrics(y, y * 3 + 1) == pytest.approx({"kendall_tau": 1.0, "spearman": 1.0})
    assert rank_metrics(y, -y)["kendall_tau"] == pytest.approx(-1.0)
    assert rank_metrics(y, np.zeros(10)) == {"kendall_tau": 0.0, "spearman": 0.0}


def test_ensemble_learns_a_ranking_and_picks_by_cv():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(120, 8)).astype(float)
    y = x[:, 0] * 2 + np.sin(x[:, 1]) + 0.5 * x[:, 2] * x[:, 3] + rng.normal(0, 0.05, 120)
    s = EnsembleSurrogate(["random_forest", "ridge", "knn", "gradient_boosting"], ensemble_size=2, seed=0)
    s.fit(x[:90], y[:90])
    assert len(s.chosen) == 2 and set(s.cv_scores) == {"random_forest", "ridge", "knn", "gradient_boosting"}
    assert min(s.cv_scores[c] for c in s.chosen) >= max(v for k, v in s.cv_scores.items() if k not in s.chosen)
    assert rank_metrics(y[90:], s.predict(x[90:]))["spearman"] > 0.85
    # same seed, same predictions
    s2 = EnsembleSurrogate(["random_forest", "ridge", "knn", "gradient_boosting"], ensemble_size=2, seed=0).fit(x[:90], y[:90])
    np.testing.assert_allclose(s.predict(x[90:]), s2.predict(x[90:]))


def test_constant_targets_and_multi_objective():
    x = np.arange(20.0).reshape(10, 2)
    s = EnsembleSurrogate(["ridge"]).fit(x, np.ones(10))
    np.testing.assert_allclose(s.predict(x[:3]), 1.0)
    m = MultiObjectiveSurrogate(["a", "b"], ["ridge"], 1).fit(x, {"a": x[:, 0], "b": -x[:, 1]})
    pred = m.predict(x)
    assert set(pred) == {"a", "b"} and rank_metrics(-x[:, 1], pred["b"])["spearman"] > 0.99
    with pytest.raises(RuntimeError):
        EnsembleSurrogate(["ridge"]).predict(x)


def test_search_refuses_surrogate_samples_without_its_score(tmp_path):
    """Samples scored before the search ranked on the soft accuracy (or by older code) lack it: a
    clear error naming the missing score and the stage to rerun, not a KeyError deep in MSuNAS."""
    import json

    from nas.config import ConfigError
    from nas.stages import load_prior
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path)
    out = tmp_path / "artifacts/surrogate"
    out.mkdir(parents=True)
    row = {"genome": [0] * 4, "status": "ok", "metrics": {"val_accuracy": 0.5, "params": 1.0, "latency_ms": 0.1}}
    (out / "samples.json").write_text(json.dumps([row]))
    with pytest.raises(ConfigError, match="no val_soft_accuracy.*evonas stage surrogate"):
        load_prior(cfg)
    row["metrics"]["val_soft_accuracy"] = 0.4
    (out / "samples.json").write_text(json.dumps([row]))
    assert load_prior(cfg)[0][1]["val_soft_accuracy"] == 0.4

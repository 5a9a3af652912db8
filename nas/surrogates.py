"""Surrogate models: predict a candidate's objectives from its encoding.

``EnsembleSurrogate`` fits each scikit-learn regressor named in params, ranks them by
cross-validated Spearman correlation (ranking, not error, is what search needs) and
averages the best ``ensemble_size``. ``MultiObjectiveSurrogate`` keeps one ensemble per
objective. Rank metrics (Kendall tau, Spearman) use scipy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class Surrogate(Protocol):
    def fit(self, x: np.ndarray, y: np.ndarray) -> "Surrogate": ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


def make_regressor(name: str, seed: int):
    # scikit-learn and scipy load where models are fitted or ranked, not with the module: 1.6 s
    # of import that every stage process paid (nas.stages imports this module)
    from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "random_forest":
        return RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    if name == "extra_trees":
        return ExtraTreesRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    if name == "gradient_boosting":
        return GradientBoostingRegressor(n_estimators=150, max_depth=3, learning_rate=0.05, random_state=seed)
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=5, weights="distance"))
    if name == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if name == "mlp":
        return make_pipeline(StandardScaler(), MLPRegressor((64, 64), max_iter=2000, random_state=seed))
    raise ValueError(f"unknown surrogate model {name!r}")


def rank_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    if len(y_true) < 3 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return {"kendall_tau": 0.0, "spearman": 0.0}
    return {"kendall_tau": float(kendalltau(y_true, y_pred).statistic),
            "spearman": float(spearmanr(y_true, y_pred).statistic)}


@dataclass
class EnsembleSurrogate:
    models: list[str]
    ensemble_size: int = 2
    cv_folds: int = 4
    seed: int = 0
    chosen: list[str] = field(default_factory=list)
    cv_scores: dict[str, float] = field(default_factory=dict)
    _fitted: list = field(default_factory=list, repr=False)
    _const: float | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> "EnsembleSurrogate":
        from sklearn.base import clone
        from sklearn.model_selection import KFold

        x, y = np.asarray(x, float), np.asarray(y, float)
        self._const = None
        if len(y) < 4 or np.ptp(y) == 0:
            self._const, self.chosen, self._fitted = float(np.mean(y)) if len(y) else 0.0, [], []
            return self
        self.cv_scores = {}
        if len(self.models) <= self.ensemble_size:  # every model is used: no selection to make
            self.chosen = list(self.models)
            self._fitted = [make_regressor(n, self.seed).fit(x, y) for n in self.chosen]
            return self
        folds = min(self.cv_folds, len(y))
        kf = KFold(folds, shuffle=True, random_state=self.seed)
        for name in self.models:
            pred = np.empty_like(y)
            for tr, te in kf.split(x):
                pred[te] = make_regressor(name, self.seed).fit(x[tr], y[tr]).predict(x[te])
            self.cv_scores[name] = rank_metrics(y, pred)["spearman"]
        ranked = sorted(self.models, key=lambda n: (-self.cv_scores[n], self.models.index(n)))
        self.chosen = ranked[: self.ensemble_size]
        self._fitted = [clone(make_regressor(n, self.seed)).fit(x, y) for n in self.chosen]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if self._const is not None:
            return np.full(len(x), self._const)
        if not self._fitted:
            raise RuntimeError("surrogate is not fitted")
        return np.mean([m.predict(x) for m in self._fitted], axis=0)


@dataclass
class MultiObjectiveSurrogate:
    """One ensemble per metric name; predicts a dict of metric arrays."""

    metrics: list[str]
    models: list[str]
    ensemble_size: int = 2
    cv_folds: int = 4
    seed: int = 0
    per_metric: dict[str, EnsembleSurrogate] = field(default_factory=dict)

    def fit(self, x: np.ndarray, ys: dict[str, np.ndarray]) -> "MultiObjectiveSurrogate":
        self.per_metric = {
            m: EnsembleSurrogate(self.models, self.ensemble_size, self.cv_folds, self.seed).fit(x, ys[m])
            for m in self.metrics}
        return self

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {m: s.predict(x) for m, s in self.per_metric.items()}

    def summary(self) -> dict:
        return {m: {"chosen": s.chosen, "cv_spearman": s.cv_scores} for m, s in self.per_metric.items()}


def save_samples(path, records: list[dict]) -> None:
    from nas.io import atomic_write_text

    atomic_write_text(path, json.dumps(records, indent=1) + "\n")

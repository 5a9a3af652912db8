"""Surrogate-assisted NSGA-II: the MSuNAS loop (Lu et al., 2020).

Each generation: refit one surrogate per objective on every true evaluation so far (plus
the samples the surrogate stage scored); run NSGA-II for many inner generations on the
surrogate's predictions, starting from the current front; propose the ``n`` most
promising unseen candidates (by predicted non-domination rank, then crowding) for true
evaluation. The first generation is a seeded random sample plus the largest and smallest
networks, so the front spans the whole space from the start.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from pymoo.core.problem import Problem
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.optimize import minimize
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nas.config import CONSTRAINT_OBJECTIVE
from nas.genome import EvaluationResult, Genome
from nas.objectives import MAXIMISE, constraint_violations
from nas.strategies.base import Archive, feasibility_first, fresh_samples
from nas.strategies.nsga2 import integer_nsga2
from nas.surrogates import MultiObjectiveSurrogate

EXACT_COSTS = ("params", "flops", "latency_ms")


class _SurrogateProblem(Problem):
    def __init__(self, space, surrogate: MultiObjectiveSurrogate, objectives, constraints, exact_costs=None):
        super().__init__(n_var=space.n_var, n_obj=len(objectives), n_ieq_constr=len(constraints),
                         xl=np.zeros(space.n_var), xu=space.upper_bounds.astype(float), vtype=int)
        self.space, self.surrogate, self.objectives, self.constraints = space, surrogate, objectives, constraints
        self.exact_costs = exact_costs

    def predict(self, genomes: list[Genome]) -> dict[str, np.ndarray]:
        """The surrogate's predictions, with every exactly known cost computed instead."""
        out = self.surrogate.predict(np.array([self.space.encode(g) for g in genomes]))
        if self.exact_costs is not None:
            rows = [self.exact_costs(g) for g in genomes]
            out.update({k: np.array([r[k] for r in rows]) for k in EXACT_COSTS})
        return out

    def _evaluate(self, X, out, *args, **kwargs):
        pred = self.predict([self.space.canonical(x) for x in X])
        out["F"] = np.column_stack([-pred[o] if o in MAXIMISE else pred[o] for o in self.objectives])
        if self.constraints:
            out["G"] = np.array([constraint_violations({k: v[i] for k, v in pred.items()}, self.constraints)
                                 for i in range(len(X))])


class MSuNASStrategy:
    name = "msunas"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int,
                 surrogate_models: list[str], ensemble_size: int = 2, cv_folds: int = 4,
                 inner_generations: int = 30, inner_population: int = 60,
                 prior: list[tuple[Genome, dict[str, float]]] | None = None, refit_every: int = 0,
                 exact_costs: Callable[[Genome], dict[str, float]] | None = None):
        """``exact_costs``: a genome's ``params``, ``flops`` and ``latency_ms`` computed without
        evaluating it (the supernet's cost table); those are then never predicted, the surrogate
        models accuracy alone, as in MSuNAS. ``refit_every`` > 0 (asynchronous search): the surrogate and its inner NSGA-II run
        only when that many new results have arrived since the last fit (or the ranked
        candidates of the last fit are used up); asks in between take the next best of the
        last ranking. 0: refit on every ask (generational)."""
        self.space = space
        self.refit_every = refit_every
        self._asked: set[Genome] = set()
        self._ranked: list[Genome] = []
        self._fitted_at = -1
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.metrics = list(objectives) + [CONSTRAINT_OBJECTIVE[c] for c in constraints
                                           if CONSTRAINT_OBJECTIVE[c] not in objectives]
        self.exact_costs = exact_costs
        self.predicted = [m for m in self.metrics if not (exact_costs and m in EXACT_COSTS)]
        self.surrogate_args = dict(models=surrogate_models, ensemble_size=ensemble_size, cv_folds=cv_folds)
        self.inner_generations, self.inner_population = inner_generations, inner_population
        self.prior = list(prior or [])
        self.last_fit: dict | None = None

    # -- helpers -------------------------------------------------------------------
    def _training_set(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rows = {g: m for g, m in self.prior}
        rows.update({r.genome: r.metrics for r in self.archive.ok()})
        genomes = list(rows)
        x = np.array([self.space.encode(g) for g in genomes])
        return x, {m: np.array([rows[g][m] for g in genomes]) for m in self.predicted}

    def _front(self) -> list[Genome]:
        ok = [r.genome for r in self.archive.ok()]
        if not ok:
            return []
        F = np.array([self.archive.F(g) for g in ok])
        return [ok[i] for i in NonDominatedSorting().do(F, only_non_dominated_front=True)]

    # -- contract --------------------------------------------------------------------
    def ask(self, n: int) -> list[Genome]:
        taken = set(self.archive.results) | self._asked
        if len(self.archive) == 0:
            first = [g for g in (self.space.largest(), self.space.smallest()) if g not in taken][: max(n, 0)]
            out = first + fresh_samples(self.space, self.rng, n - len(first), taken | set(first))
        elif self.refit_every:
            stale = self._fitted_at < 0 or len(self.archive) - self._fitted_at >= self.refit_every
            self._ranked = [g for g in self._ranked if g not in taken]
            if stale or len(self._ranked) < n:
                self._ranked = self._propose(max(n, self.inner_population // 2), taken)
                self._fitted_at = len(self.archive)
            out, self._ranked = self._ranked[:n], self._ranked[n:]
            if len(out) < n:
                out += fresh_samples(self.space, self.rng, n - len(out), taken | set(out))
        else:
            out = self._propose(n, taken)
        self._asked.update(out)
        return out

    def _propose(self, n: int, taken: set[Genome]) -> list[Genome]:
        x, ys = self._training_set()
        surrogate = MultiObjectiveSurrogate(self.predicted, seed=int(self.rng.integers(2**31)),
                                            **self.surrogate_args).fit(x, ys)
        self.last_fit = surrogate.summary()
        problem = _SurrogateProblem(self.space, surrogate, self.archive.objectives, self.archive.constraints,
                                    self.exact_costs)
        start = self._front()
        start += fresh_samples(self.space, self.rng, max(0, self.inner_population - len(start)), start)
        init = np.array([g.values for g in start[: self.inner_population]], dtype=float)
        res = minimize(problem, integer_nsga2(self.inner_population, sampling=init),
                       ("n_gen", self.inner_generations), seed=int(self.rng.integers(2**31)), verbose=False)
        cands: list[Genome] = []
        for xrow in res.pop.get("X"):
            g = self.space.canonical(xrow)
            if g not in taken and g not in cands:
                cands.append(g)
        chosen = self._rank(problem, cands)[:n]
        # Too few new candidates on the inner front: mutate the true front, then sample.
        front = self._front() or [self.space.sample(self.rng)]
        for _ in range(20 * n):
            if len(chosen) >= n:
                break
            g = self.space.mutate(front[int(self.rng.integers(len(front)))], self.rng)
            if g not in taken and g not in chosen:
                chosen.append(g)
        chosen += fresh_samples(self.space, self.rng, n - len(chosen), taken | set(chosen))
        return chosen

    def _rank(self, problem: _SurrogateProblem, cands: list[Genome]) -> list[Genome]:
        if not cands:
            return []
        out: dict = {}
        problem._evaluate(np.array([g.values for g in cands], dtype=float), out)
        F = out["F"]
        if "G" in out:  # infeasible (predicted) candidates go last, the least violating first
            F = feasibility_first(F, out["G"])
        fronts = NonDominatedSorting().do(F)
        order: list[int] = []
        for front in fronts:
            cd = calc_crowding_distance(F[front]) if len(front) > 2 else np.full(len(front), np.inf)
            order += [front[i] for i in np.argsort(-cd, kind="stable")]
        return [cands[i] for i in order]

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        for r in results:
            self._asked.discard(r.genome)

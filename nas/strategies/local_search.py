"""Surrogate-ordered best-first local search (Pareto local search with several objectives).

After ``n_init`` random samples, candidates are the unevaluated one-step neighbours (every
single-gene change) of the best evaluated architectures, expanded best-first: the
neighbourhood of the incumbent first, then of the next best, and so on. With several
objectives "best" is by non-domination rank, then crowding distance, so the whole front is
expanded (Pareto local search). Within a neighbourhood the order is the prediction of a
random-forest surrogate refitted on every evaluation so far. After ``patience`` evaluations
without a new best, one proposal jumps out of the basin: the most promising (by the
surrogate) of ``kick_pool`` fresh random architectures. Local search is a strong
baseline on cell spaces such as NAS-Bench-201 (White et al., 2021); the surrogate spends the
budget on the most promising neighbours first.
"""

from __future__ import annotations

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nas.genome import EvaluationResult, Genome
from nas.strategies.base import Archive, fresh_samples


def neighbours(space, g: Genome) -> list[Genome]:
    """Every genome one gene away from ``g`` (after canonicalisation), without ``g`` itself."""
    out, seen = [], {g}
    ub = space.upper_bounds
    for i in range(space.n_var):
        for v in range(int(ub[i]) + 1):
            if v == g.values[i]:
                continue
            vals = list(g.values)
            vals[i] = v
            n = space.canonical(vals)
            if n not in seen:
                seen.add(n)
                out.append(n)
    return out


class LocalSearchStrategy:
    name = "local_search"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int,
                 n_init: int = 10, surrogate: bool = True, patience: int = 12, kick_pool: int = 300):
        self.space = space
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.n_init, self.use_surrogate = n_init, surrogate
        self.patience, self.kick_pool = patience, kick_pool
        self._asked: set[Genome] = set()
        self._stale = 0

    def _ranked_archive(self) -> list[Genome]:
        return self.archive.ranked()

    def _scores(self, cands: list[Genome]) -> np.ndarray:
        """Higher is more promising. One multi-output random forest predicts every objective and
        constraint; candidates predicted feasible come first, then by predicted non-domination
        rank, then by the first objective."""
        ok = self.archive.ok()
        if not self.use_surrogate or len(ok) < 8:
            return self.rng.random(len(cands))
        from sklearn.ensemble import RandomForestRegressor

        x = np.array([self.space.encode(r.genome) for r in ok])
        y = np.array([np.concatenate([self.archive.F(r.genome), self.archive.G(r.genome)]) for r in ok])
        model = RandomForestRegressor(n_estimators=60, random_state=int(self.rng.integers(2**31)), n_jobs=1)
        pred = model.fit(x, y[:, 0] if y.shape[1] == 1 else y).predict(np.array([self.space.encode(c) for c in cands])).reshape(len(cands), -1)
        n_obj = len(self.archive.objectives)
        F, G = pred[:, :n_obj], pred[:, n_obj:]
        infeasible = (np.maximum(G, 0).sum(axis=1) > 0) if G.shape[1] else np.zeros(len(cands), bool)
        rank = np.zeros(len(cands))
        if n_obj > 1:
            for r, front in enumerate(NonDominatedSorting().do(F)):
                rank[front] = r
        return -(infeasible * 1e6 + rank * 1e3) - F[:, 0] / (np.abs(F[:, 0]).max() + 1e-12) \
            + 1e-9 * self.rng.random(len(cands))

    def ask(self, n: int) -> list[Genome]:
        taken = set(self.archive.results) | self._asked
        if len(self.archive) + len(self._asked) < self.n_init:
            out = fresh_samples(self.space, self.rng, min(n, self.n_init - len(self.archive) - len(self._asked)), taken)
        else:
            out = []
            if self.patience and self._stale >= self.patience:
                # stuck in one basin: one proposal jumps to the most promising of many fresh random architectures
                pool = fresh_samples(self.space, self.rng, self.kick_pool, taken)
                out = [pool[int(np.argmax(self._scores(pool)))]] if pool else []
                self._stale = 0
            for centre in (self._ranked_archive() if len(out) < n else []):
                cands = [c for c in neighbours(self.space, centre) if c not in taken and c not in out]
                if not cands:
                    continue
                order = np.argsort(-self._scores(cands), kind="stable")
                out += [cands[i] for i in order[: n - len(out)]]
                if len(out) >= n:
                    break
            if len(out) < n:
                out += fresh_samples(self.space, self.rng, n - len(out), taken | set(out))
        self._asked.update(out)
        return out

    def tell(self, results: list[EvaluationResult]) -> None:
        before = self._best()
        self.archive.add(results)
        for r in results:
            self._asked.discard(r.genome)
        self._stale = 0 if self._best() < before else self._stale + len(results)

    def _best(self) -> float:
        """Best first-objective value among feasible evaluated candidates (minimisation)."""
        vals = [self.archive.F(g)[0] for g in self.archive.results
                if not (np.maximum(self.archive.G(g), 0).sum() > 0)]
        return min(vals) if vals else np.inf

"""The Strategy contract and the archive every strategy keeps.

A strategy proposes (``ask``) and learns (``tell``); it never evaluates, sleeps, or
touches Dask or Prefect. Every random choice comes from its own seeded generator.
``ask`` never returns a genome it has already been told about, so the budget counts
distinct evaluations.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nas.genome import EvaluationResult, Genome
from nas.objectives import constraint_violations, to_minimise

PENALTY = 1e12
"""Objective and constraint value given to failed candidates (worse than any real one)."""


def feasibility_first(F: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Deb's constrained domination written as plain objectives (for non-dominated sorting and
    tournaments): a feasible point keeps its objectives; an infeasible one gets 1e9 plus its total
    violation in every objective, so every feasible point dominates it and, among infeasible
    points, exactly those that violate less do (so a search with nothing feasible yet is steered
    towards the limits, not away from them). ``F`` and ``G`` are one point's vectors or
    row-per-point arrays; no constraints (``G`` with no columns) leaves ``F`` as it is."""
    v = np.expand_dims(np.maximum(np.asarray(G, dtype=float), 0).sum(axis=-1), -1)
    return np.where(v > 0, 1e9 + v, F)


@runtime_checkable
class Strategy(Protocol):
    name: str

    def ask(self, n: int) -> list[Genome]: ...

    def tell(self, results: list[EvaluationResult]) -> None: ...


class Archive:
    """Every result told so far, by genome, in the order they arrived."""

    def __init__(self, objectives: list[str], constraints: dict[str, float]):
        self.objectives = list(objectives)
        self.constraints = dict(constraints)
        self.results: dict[Genome, EvaluationResult] = {}
        self._ranked_point: dict[Genome, np.ndarray] = {}  # a told result never changes: computed once

    def __contains__(self, g: Genome) -> bool:
        return g in self.results

    def __len__(self) -> int:
        return len(self.results)

    def add(self, results: list[EvaluationResult]) -> None:
        for r in results:
            self.results.setdefault(r.genome, r)

    def ok(self) -> list[EvaluationResult]:
        return [r for r in self.results.values() if r.ok]

    def F(self, g: Genome) -> np.ndarray:
        r = self.results[g]
        if not r.ok:
            return np.full(len(self.objectives), PENALTY)
        return to_minimise(r.metrics, self.objectives)

    def G(self, g: Genome) -> np.ndarray:
        r = self.results[g]
        if not self.constraints:
            return np.zeros(0)
        if not r.ok:
            return np.full(len(self.constraints), PENALTY)
        return constraint_violations(r.metrics, self.constraints)

    def ranked_point(self, g: Genome) -> np.ndarray:
        """``feasibility_first`` of a told genome's objectives and constraints (cached)."""
        point = self._ranked_point.get(g)
        if point is None:
            point = self._ranked_point[g] = feasibility_first(self.F(g), self.G(g))
        return point

    def ranked(self) -> list[Genome]:
        """Every told genome, best first: feasible before infeasible (those by total violation,
        ``feasibility_first``), then by non-domination rank, then (several objectives) by crowding
        distance, largest first; failed last."""
        gs = list(self.results)
        if not gs:
            return []
        F = np.array([self.ranked_point(g) for g in gs])
        order: list[int] = []
        for front in NonDominatedSorting().do(F):
            if F.shape[1] > 1 and len(front) > 2:
                cd = calc_crowding_distance(F[front])
                front = front[np.argsort(-cd, kind="stable")]
            else:
                front = front[np.argsort(F[front, 0], kind="stable")]
            order += list(front)
        return [gs[i] for i in order]


def fresh_samples(space, rng: np.random.Generator, n: int, exclude, tries: int = 50) -> list[Genome]:
    """Up to ``n`` distinct random genomes not in ``exclude``."""
    out: list[Genome] = []
    seen = set(exclude)
    for _ in range(n * tries):
        if len(out) == n:
            break
        g = space.sample(rng)
        if g not in seen:
            seen.add(g)
            out.append(g)
    return out


def size_stratified(space, rng: np.random.Generator, n: int, size_of, pool: int = 2000) -> list[Genome]:
    """``n`` genomes spread evenly over the sizes of the space: ``pool`` uniform samples sorted by
    ``size_of(genome)`` and cut at ``n`` evenly spaced quantiles, the smallest and largest
    networks of the space at the two ends (what a ranking check needs: every size represented)."""
    if n < 2:
        raise ValueError(f"size_stratified needs n >= 2, got {n}")
    ends = [space.smallest(), space.largest()]
    cands = ends + fresh_samples(space, rng, pool, ends)
    sizes = np.array([size_of(g) for g in cands], dtype=float)
    order = [cands[i] for i in np.argsort(sizes, kind="stable")]
    picks = [order[int(round(q))] for q in np.linspace(0, len(order) - 1, n)]
    picks[0], picks[-1] = ends
    out: list[Genome] = []
    for g in picks:  # a duplicate (tiny spaces) is replaced by a fresh sample
        out.append(g if g not in out else next(iter(fresh_samples(space, rng, 1, out)), g))
    return out

"""Regularised (aging) evolution (Real et al., 2019).

A FIFO population of the last ``population`` evaluated candidates. Each child is a mutation
of the winner of a tournament of ``tournament`` members drawn at random from the
population; the oldest member dies when a new one arrives, whatever its fitness. With
several objectives the tournament winner is the member of best non-domination rank in the
tournament (ties broken at random). With ``crossover_prob > 0`` a child is, with that
probability, the space's crossover of the winners of two tournaments (the second redrawn, up to
10 times, until it differs from the first; uniform, or Shortest-Edit-Path with
``space.crossover: sep``), mutated with probability ``mutate_after_crossover`` (1/2; always
when it repeats a genome already seen). Works one candidate at a time or in batches, so it
suits both generational and asynchronous runners.

``duration_weight`` (α, default 0) counters the evaluation-time bias of asynchronous runs
(Scott & De Jong, GECCO 2015: fast candidates come back first, so their lineages breed more per
unit of time): tournament members are drawn with probability proportional to their evaluation
seconds to the power α instead of uniformly. It is for asynchronous runs; a generation is told all
at once, so there the bias does not arise.

``elitist=True`` makes the selection NSGA-II's, for several objectives: tournament members are drawn
from the living population together with the non-dominated set of everything told so far (kept
incrementally), and the winner is the member of best non-domination rank *in that whole pool*, then
of largest crowding distance in its front (ties at random), instead of the best rank within the
sample. Old members still die, so the population keeps aging, but the best trade-offs found stay
parents. With one objective the elite is the best genome found and the order is the objective's.
It is off by default: with noisy evaluations an elite member that scored high by luck stays a parent
for good, which is what aging's deaths guard against (on NAS-Bench-201's noisy 12-epoch signal it
still did better than the classic rule; see benchmarks/results/nb201.md).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nas.genome import EvaluationResult, Genome
from nas.strategies.base import Archive, fresh_samples


class AgingEvolutionStrategy:
    name = "aging"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int,
                 population: int = 20, tournament: int = 5, crossover_prob: float = 0.0,
                 mutate_after_crossover: float = 0.5, duration_weight: float = 0.0, elitist: bool = False):
        if tournament > population:
            raise ValueError(f"tournament ({tournament}) cannot exceed population ({population})")
        self.space = space
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.population_size, self.tournament = population, tournament
        self.crossover_prob, self.mutate_after_crossover = crossover_prob, mutate_after_crossover
        self.population: deque[Genome] = deque()
        self._asked: set[Genome] = set()
        if duration_weight < 0:
            raise ValueError(f"duration_weight must be >= 0, got {duration_weight}")
        self.duration_weight = duration_weight
        self._seconds: dict[Genome, float] = {}  # evaluation seconds of the members, for duration_weight
        self.elitist = elitist
        self._elite: dict[Genome, np.ndarray] = {}  # the non-dominated genomes of everything told, with their fitness
        self._order: tuple[list[Genome], np.ndarray, np.ndarray] | None = None  # pool, rank, crowding; per tell

    def _fitness(self, g: Genome) -> np.ndarray:
        # infeasible members lose to every feasible one, and to those that violate the limits less
        return self.archive.ranked_point(g)

    def _winner(self) -> Genome:
        if self.elitist:
            members, rank, crowd = self._ranked_pool()
        else:
            members = list(self.population)
        # while the first population is still arriving (asynchronous runs) it may be smaller than a tournament
        size = min(self.tournament, len(members))
        if self.duration_weight > 0:
            d = np.array([max(self._seconds.get(m, 0.0), 1e-9) for m in members]) ** self.duration_weight
            pick = self.rng.choice(len(members), size=size, replace=False, p=d / d.sum())
        else:
            pick = self.rng.choice(len(members), size=size, replace=False)
        if self.elitist:
            r, c = rank[pick], crowd[pick]
            first = r == r.min()
            best = np.flatnonzero(first & (c == c[first].max()))
            return members[pick[int(self.rng.choice(best))]]
        F = np.array([self._fitness(members[i]) for i in pick])
        best = NonDominatedSorting().do(F, only_non_dominated_front=True) if F.shape[1] > 1 \
            else np.flatnonzero(F[:, 0] == F[:, 0].min())
        return members[pick[int(self.rng.choice(best))]]

    def _ranked_pool(self) -> tuple[list[Genome], np.ndarray, np.ndarray]:
        """The elitist selection pool (population, then elite members not in it) with each
        member's non-domination rank in the pool and crowding distance in its front; computed once
        per tell."""
        if self._order is None:
            members = list(self.population)
            inside = set(members)
            members += [g for g in self._elite if g not in inside]
            F = np.array([self._fitness(m) for m in members])
            rank, crowd = np.zeros(len(members)), np.zeros(len(members))
            if F.shape[1] > 1:
                for k, front in enumerate(NonDominatedSorting().do(F)):
                    rank[front] = k
                    crowd[front] = calc_crowding_distance(F[front]) if len(front) > 2 else np.inf
            else:
                rank = F[:, 0].copy()
            self._order = (members, rank, np.nan_to_num(crowd, nan=0.0))
        return self._order

    def _update_elite(self, g: Genome) -> None:
        f = self._fitness(g)
        if any((fe <= f).all() for fe in self._elite.values()):
            return  # dominated by (or equal to) a member of the elite
        self._elite = {e: fe for e, fe in self._elite.items() if not (f <= fe).all()}
        self._elite[g] = f

    def ask(self, n: int) -> list[Genome]:
        taken = set(self.archive.results) | self._asked
        out: list[Genome] = []
        fill = max(0, self.population_size - len(self.population) - len(self._asked))
        if fill:
            out += fresh_samples(self.space, self.rng, min(n, fill), taken)
        while len(out) < n and self.population:
            for _ in range(50):
                child = self._child(taken | set(out))
                if child not in taken and child not in out:
                    out.append(child)
                    break
            else:  # the neighbourhood is exhausted: explore elsewhere
                extra = fresh_samples(self.space, self.rng, 1, taken | set(out))
                if not extra:
                    break
                out += extra
        if len(out) < n and not self.population:  # still filling the first population
            out += fresh_samples(self.space, self.rng, n - len(out), taken | set(out))
        self._asked.update(out)
        return out

    def _child(self, seen: set[Genome]) -> Genome:
        if self.crossover_prob > 0 and len(self.population) > 1 and self.rng.random() < self.crossover_prob:
            a = self._winner()
            for _ in range(10):  # a second tournament, redrawn until its winner differs from the first
                b = self._winner()
                if b != a:
                    break
            child = self.space.crossover(a, b, self.rng)
            if child in seen or self.rng.random() < self.mutate_after_crossover:
                child = self.space.mutate(child, self.rng)
            return child
        return self.space.mutate(self._winner(), self.rng)

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        if self.elitist:
            self._order = None
            for r in results:
                self._update_elite(r.genome)
        for r in results:
            self._asked.discard(r.genome)
            self.population.append(r.genome)
            if self.duration_weight > 0:
                self._seconds[r.genome] = r.eval_seconds
            while len(self.population) > self.population_size:  # a genome is evaluated once: no duplicates
                dead = self.population.popleft()
                if not self.elitist:  # an elite member outlives its place in the population
                    self._seconds.pop(dead, None)

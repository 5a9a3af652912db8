"""The WANN search (Gaier & Ha, 2019): topologies ranked by how well they do at any shared weight.

Each candidate is scored at every shared weight (:data:`nas.wann.network.SHARED_WEIGHTS`); its
metrics are ``mean_score`` (mean performance over the weights), ``max_score`` (the best weight)
and ``connections`` (and, for classification, ``ensemble_score``: the weights' ensemble). The
population is **ranked** by non-dominated sorting (pymoo), with probability ``conn_rank_prob``
(0.8) on (mean performance, fewer connections) and otherwise on (mean performance, max
performance), the choice drawn once per ranking, as in the paper's release; inside a front, a
larger crowding distance ranks first. With ``ensemble_score`` before ``mean_score`` in the
objectives (or without it), the ensemble's performance takes the mean's place. Then:

- **elitism**: the best ``elite_ratio`` of the population stay (they are not evaluated again);
- **culling**: the worst ``cull_ratio`` may not reproduce;
- **tournament selection** among the rest (``tournament`` members drawn, the best-ranked wins),
  and the child is the winner after ``mutations`` topology mutations (one by default) (:meth:`nas.spaces.wann.WANNSpace.mutate`;
  no crossover). A child already asked or evaluated is mutated again.

Generations: ``ask(n)`` proposes ``n`` children of the current population (the initial
population is ``n`` minimal random networks); ``tell`` collects results, and once as many have
come back as the last population had new members the next population is the elites plus them.
In asynchronous mode the same holds with the ``M`` results of each return: parents are always
drawn from the latest population. Failed candidates rank last. Every random choice comes from
one seeded generator, so a run is replayed exactly from its checkpoint.
"""

from __future__ import annotations

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nas.config import wann_score
from nas.genome import EvaluationResult, Genome
from nas.strategies.base import Archive


def wann_rank(metrics: list[dict | None], use_connections: bool, score: str = "mean_score") -> np.ndarray:
    """Rank (0 = best) of each candidate: non-dominated sorting on (``score``, fewer connections)
    when ``use_connections``, else on (``score``, max performance); ``score`` is the mean
    performance over the shared weights (the paper) or, for classification, their ensemble's
    (``ensemble_score``). Crowding distance breaks ties inside a front; failed candidates
    (``None``) come last."""
    n = len(metrics)
    ok = [i for i, m in enumerate(metrics) if m is not None]
    rank = np.empty(n, dtype=np.int64)
    if ok:
        second = ("connections", 1.0) if use_connections else ("max_score", -1.0)
        F = np.array([[-metrics[i][score], second[1] * metrics[i][second[0]]] for i in ok], dtype=float)
        order: list[int] = []
        for front in NonDominatedSorting().do(F):
            if len(front) > 2:
                cd = calc_crowding_distance(F[front])
                front = front[np.lexsort((F[front, 0], -cd))]
            else:
                front = front[np.argsort(F[front, 0], kind="stable")]
            order += [ok[i] for i in front]
        rank[order] = np.arange(len(order))
    failed = [i for i in range(n) if metrics[i] is None]
    rank[failed] = len(ok) + np.arange(len(failed))
    return rank


class WANNStrategy:
    name = "wann"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int,
                 conn_rank_prob: float = 0.8, elite_ratio: float = 0.2, cull_ratio: float = 0.2,
                 tournament: int = 8, mutations: int = 1):
        self.space = space
        self.score = wann_score(objectives)  # mean_score or ensemble_score
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.conn_rank_prob, self.elite_ratio, self.cull_ratio = conn_rank_prob, elite_ratio, cull_ratio
        self.tournament = tournament
        self.mutations = mutations
        self.population: list[Genome] = []  # ranked, best first
        self._pending: list[EvaluationResult] = []
        self._expected = 0  # new members the forming generation waits for
        self._asked: set[Genome] = set()  # every genome asked or told: a child must be new
        self.generation = 0

    def _metrics(self, g: Genome) -> dict | None:
        r = self.archive.results.get(g)
        return r.metrics if r is not None and r.ok else None

    def _rank(self, members: list[Genome]) -> list[Genome]:
        use_conn = bool(self.rng.random() < self.conn_rank_prob)
        rank = wann_rank([self._metrics(g) for g in members], use_conn, self.score)
        return [members[i] for i in np.argsort(rank, kind="stable")]

    def ask(self, n: int) -> list[Genome]:
        # kept up to date by tell, not rebuilt here: rebuilding compared every told genome's spec with
        # its asked twin (equal text, another object), seconds per generation after 200,000 networks
        seen = self._asked
        out: list[Genome] = []
        if not self.population:
            for _ in range(50 * n):
                if len(out) == n:
                    break
                g = self.space.sample(self.rng)
                if g not in seen:
                    seen.add(g)
                    out.append(g)
        else:
            pop = self.population
            parents = pop[:max(1, int(round(len(pop) * (1 - self.cull_ratio))))]
            for _ in range(20 * n):
                if len(out) == n:
                    break
                k = min(self.tournament, len(parents))
                child = parents[int(self.rng.choice(len(parents), size=k, replace=False).min())]
                for _ in range(10):
                    for _ in range(self.mutations):
                        child = self.space.mutate(child, self.rng)
                    if child not in seen:
                        break
                if child not in seen:
                    seen.add(child)
                    out.append(child)
        self._asked.update(out)
        self._expected += len(out)
        return out

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        self._asked.update(r.genome for r in results)
        self._pending += results
        if len(self._pending) >= self._expected or not self.population:
            elites = self.population[:int(round(len(self.population) * self.elite_ratio))]
            fresh = [r.genome for r in self._pending]
            self.population = self._rank(list(dict.fromkeys([*elites, *fresh])))
            self._pending, self._expected = [], max(0, self._expected - len(self._pending))
            self.generation += 1

    def snapshot(self) -> dict:
        """The current population, ranked, with each member's scores (written beside the search's outputs)."""
        return {"generation": self.generation,
                "population": [{"candidate_id": g.key(), "genome": g.payload(), **(self._metrics(g) or {})}
                               for g in self.population]}

"""CMA-ES over a continuous genome (TaylorGLO's loss coefficients), through the ``cma`` package's
ask/tell interface.

The space gives the start (``x0()``) and the genome <-> vector maps (``from_vector``,
``vector``). Fitness is the first objective in minimisation form (``-val_accuracy``); a failed
candidate (e.g. a loss whose training diverged) gets 1.0, worse than any accuracy. Results are
handed to CMA-ES once a whole population (``popsize``) of them has arrived, so the distribution
moves once per generation however the runner batches its asks. Every normal draw comes from this
strategy's seeded generator (``cma``'s ``randn`` option; its global-NumPy seeding is switched off),
so a replayed run proposes the same candidates."""

from __future__ import annotations

import numpy as np

from nas.genome import EvaluationResult, Genome
from nas.objectives import to_minimise
from nas.strategies.base import Archive

FAILED = 1.0


def seeded_es(x0, sigma0: float, rng: np.random.Generator, popsize: int | None = None):
    """A ``cma.CMAEvolutionStrategy`` whose every normal draw comes from ``rng`` (``cma``'s
    ``randn`` option; its own seeding, which reseeds NumPy's global generator, is switched off),
    with cma's stopping rules off: callers bound the search by a count of iterations or
    evaluations. ``popsize`` None: cma's default, 4 + 3 ln n."""
    import cma

    opts = {"seed": np.nan, "verbose": -9, "randn": lambda lam, n: rng.standard_normal((lam, n)),
            "tolx": 0, "tolfun": 0, "tolfunhist": 0, "tolflatfitness": 10 ** 9, "tolstagnation": 10 ** 9,
            "maxiter": 10 ** 9}
    if popsize:
        opts["popsize"] = popsize
    return cma.CMAEvolutionStrategy(x0, sigma0, opts)


class CMAESStrategy:
    name = "cma"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int, popsize: int,
                 sigma0: float):
        if len(objectives) != 1:
            raise ValueError(f"CMA-ES optimises one objective, got {objectives}")
        self.space = space
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.popsize = popsize
        self.es = seeded_es(space.x0(), sigma0, self.rng, popsize=popsize)
        self._vectors: dict[Genome, np.ndarray] = {}
        self._pending: list[tuple[np.ndarray, float]] = []
        self.generations = 0

    def ask(self, n: int) -> list[Genome]:
        out = []
        for x in self.es.ask(n):
            g = self.space.from_vector(x)
            self._vectors[g] = np.asarray(x, dtype=float)
            out.append(g)
        return out

    def _fitness(self, r: EvaluationResult) -> float:
        return float(to_minimise(r.metrics, self.archive.objectives)[0]) if r.ok else FAILED

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        for r in results:
            x = self._vectors.pop(r.genome, None)
            self._pending.append((x if x is not None else self.space.vector(r.genome), self._fitness(r)))
        if len(self._pending) >= self.popsize:
            X, f = zip(*self._pending)
            self.es.tell(list(X), list(f))
            self._pending = []
            self.generations += 1

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.es.mean, dtype=float)

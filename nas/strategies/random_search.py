"""Random search: distinct uniform samples from the space (the baseline every strategy must beat)."""

from __future__ import annotations

import numpy as np

from nas.genome import EvaluationResult, Genome
from nas.strategies.base import Archive, fresh_samples


class RandomStrategy:
    name = "random"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int):
        self.space = space
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self._asked: set[Genome] = set()

    def ask(self, n: int) -> list[Genome]:
        out = fresh_samples(self.space, self.rng, n, self._asked | set(self.archive.results))
        self._asked.update(out)
        return out

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)

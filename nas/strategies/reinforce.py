"""REINFORCE controller (Williams, 1992), the reinforcement-learning baseline of NAS-Bench-101.

As in NAS-Bench-101's baseline (Ying et al., 2019) and the SEP paper's noise-free experiment:
one independent categorical distribution per gene of an integer-vector space (softmax over
zero-initialised logits; for a NAS-Bench-101 cell, 21 binary edge choices and 5 three-way op
choices), no recurrent controller. Each evaluated architecture updates the logits by plain
gradient ascent, ``logits += lr * advantage * grad log p(raw vector)``, where the advantage
is the reward minus an exponential moving average baseline (momentum 0.9, bias-corrected,
updated with the reward first). The reward is the first objective, signed so that higher is
better (``val_accuracy``; the negated graph edit distance in ``benchmarks/sep_permutation.py``).
With ``normalise`` the advantage is divided by a running standard deviation of the rewards,
which makes ``lr`` independent of the reward's scale (off in the paper's setting).

Vectors that are not valid architectures (``space.canonical_or_none`` gives None) are redrawn.
A draw that repeats an architecture already evaluated is not evaluated again: its recorded
reward updates the controller at once and another is drawn (at most ``redraws`` per asked
candidate; then a fresh uniform sample). All randomness comes from the strategy's generator,
so a run replays exactly.
"""

from __future__ import annotations

import numpy as np

from nas.genome import EvaluationResult, Genome
from nas.strategies.base import Archive, fresh_samples


class ReinforceStrategy:
    name = "reinforce"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int, lr: float = 0.1,
                 momentum: float = 0.9, normalise: bool = True, redraws: int = 200):
        if not hasattr(space, "upper_bounds"):
            raise ValueError(f"search.strategy 'reinforce' needs a fixed-length genome; space {space.name!r} has none")
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"reinforce needs lr > 0 and momentum in [0, 1), got {lr}, {momentum}")
        self.space = space
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.lr, self.momentum, self.normalise, self.redraws = lr, momentum, normalise, redraws
        self.sizes = np.asarray(space.upper_bounds, dtype=np.int64) + 1
        # one row of logits per gene, padded to the widest choice; padding is never drawn
        self.valid = np.arange(int(self.sizes.max()))[None, :] < self.sizes[:, None]
        self.logits = np.where(self.valid, 0.0, -1e9)
        self._num = self._den = 0.0  # bias-corrected moving average of the reward
        self._sq = 0.0  # and of its square (for ``normalise``)
        self._raw: dict[Genome, np.ndarray] = {}
        self._asked: set[Genome] = set()
        self.updates = 0

    def _probs(self) -> np.ndarray:
        e = np.exp(self.logits - self.logits.max(axis=1, keepdims=True)) * self.valid
        return e / e.sum(axis=1, keepdims=True)

    def _draw(self) -> tuple[np.ndarray, Genome | None]:
        """One raw vector from the controller (one uniform number per gene, inverse CDF)."""
        cdf = np.cumsum(self._probs(), axis=1)
        u = self.rng.random(len(self.sizes))[:, None]
        raw = np.minimum((cdf < u).sum(axis=1), self.sizes - 1).astype(np.int64)
        conv = getattr(self.space, "canonical_or_none", None)
        if conv is not None:
            return raw, conv(raw)
        return raw, self.space.canonical(raw)

    def _reward(self, g: Genome) -> float:
        F, G = self.archive.F(g), self.archive.G(g)
        return float(-F[0]) - 1e3 * float(np.maximum(G, 0).sum())

    def _update(self, raw: np.ndarray, reward: float) -> None:
        m = self.momentum
        self._num = m * self._num + (1 - m) * reward
        self._sq = m * self._sq + (1 - m) * reward * reward
        self._den = m * self._den + (1 - m)
        base = self._num / self._den
        adv = reward - base
        if self.normalise:
            var = max(self._sq / self._den - base * base, 0.0)
            adv /= np.sqrt(var) + 1e-8
        grad = -self._probs()
        grad[np.arange(len(raw)), raw] += 1.0  # d log p(raw) / d logits, gene by gene
        self.logits += self.lr * adv * grad * self.valid
        self.updates += 1

    def ask(self, n: int) -> list[Genome]:
        taken = set(self.archive.results) | self._asked
        out: list[Genome] = []
        while len(out) < n:
            for _ in range(self.redraws):
                raw, g = self._draw()
                if g is None:
                    continue  # not a valid architecture: draw again
                if g in self.archive.results and self.archive.results[g].ok:
                    self._update(raw, self._reward(g))  # known already: learn from it, draw again
                    continue
                if g not in taken and g not in out:
                    self._raw[g] = raw
                    out.append(g)
                    break
            else:
                extra = fresh_samples(self.space, self.rng, 1, taken | set(out))
                if not extra:
                    break
                out += extra
        self._asked.update(out)
        return out

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        for r in results:
            self._asked.discard(r.genome)
            raw = self._raw.pop(r.genome, None)
            if raw is not None and r.ok:
                self._update(raw, self._reward(r.genome))

"""Thompson-sampling Bayesian optimisation with a Bayesian linear model of gene interactions.

Each objective (and each constraint) gets its own Bayesian linear regression on
*main effects* (one indicator per gene value) plus *pairwise interactions* (one indicator per
pair of genes and pair of values). The interactions get a much stronger prior (a larger
precision), so the model starts out nearly additive — which is what makes it learn fast:
a cell's accuracy is mostly the sum of what each edge's operation contributes — and bends
only where the data demand it (two edges that only matter together, a second basin of good
cells with a different wiring). This is the BOCS-style model of Baptista & Poloczek (2018)
with Thompson sampling as the acquisition, as in the "BO with simple models" line of NAS
work (White et al., 2021, "BANANAS"; "How powerful are performance predictors").

Targets are rank-transformed to normal scores before fitting, so a few catastrophic
architectures (a cell whose every path is ``none`` scores 10 %) do not dominate the fit,
and objectives on different scales (accuracy, latency) become comparable.

Each proposal draws one sample of the weights from the posterior of every model, scores
every candidate with it, and takes the best unevaluated one:

- one objective: the candidate with the best sampled value;
- several objectives: the candidate with the largest hypervolume improvement over the
  current front (in normal-score space), which spends evaluations where the front can
  still move; when no candidate is predicted to improve it, the one closest to doing so
  (smallest additive epsilon to non-domination). Once ``primary_start`` architectures have
  been proposed, every ``primary_every``-th proposal is instead the best sampled value of the
  first (primary) objective alone, as with one objective: filling the front spreads the
  evaluations thin, and without these steps the most accurate architecture found lags far
  behind a single-objective search (NAS-Bench-201 with latency, 140 held-out seeds: mean test
  accuracy of the signal-best cell +0.16 points at 50 evaluations and +0.24 at 100; the
  front's hypervolume slightly lower at 50, within the noise, and larger at 60-100);
- constraints: candidates whose sampled constraint value is violated are taken only when
  no other remains.

Candidates are the whole space when it has at most ``enumerate_limit`` architectures (for
NAS-Bench-201 all 15,625 cells are scored on every proposal), otherwise ``pool_size`` fresh
random architectures plus every one-step neighbour of the best ``local_centres`` evaluated
ones. Posterior samples use the cheaper of the primal form (features x features) or the
dual form (evaluations x evaluations, Matheron's rule), so large spaces stay fast.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular
from scipy.stats import norm, rankdata

from nas.genome import EvaluationResult, Genome
from nas.pareto import non_dominated
from nas.strategies.base import Archive, fresh_samples
from nas.strategies.local_search import neighbours


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Ranks mapped to standard-normal quantiles (ties share their average rank)."""
    return norm.ppf(rankdata(y) / (len(y) + 1))


class InteractionFeatures:
    """Sparse indicator features of an integer vector: which value each gene takes, and which
    pair of values each pair of genes takes. A genome is represented by the indices of its
    active features (``n_var + n_var*(n_var-1)/2`` of them)."""

    def __init__(self, upper_bounds: np.ndarray, pairwise: bool = True):
        card = np.asarray(upper_bounds, dtype=np.int64) + 1
        self.card = card
        self.main_offset = np.concatenate([[0], np.cumsum(card)[:-1]])
        n_main = int(card.sum())
        self.pairs = list(itertools.combinations(range(len(card)), 2)) if pairwise else []
        sizes = [int(card[a] * card[b]) for a, b in self.pairs]
        self.pair_offset = n_main + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes \
            else np.zeros(0, np.int64)
        self.n_main = n_main
        self.n_features = n_main + int(sum(sizes))

    def indices(self, values: np.ndarray) -> np.ndarray:
        """``values``: (n, n_var) integers -> (n, n_active) feature indices."""
        v = np.asarray(values, dtype=np.int64)
        cols = [v + self.main_offset]
        if self.pairs:
            a = np.array([p[0] for p in self.pairs])
            b = np.array([p[1] for p in self.pairs])
            cols.append(self.pair_offset + v[:, a] * self.card[b] + v[:, b])
        return np.concatenate(cols, axis=1)

    def dense(self, idx: np.ndarray) -> np.ndarray:
        out = np.zeros((len(idx), self.n_features))
        np.put_along_axis(out, idx, 1.0, axis=1)
        return out

    def sparse(self, idx: np.ndarray) -> sp.csr_matrix:
        """The same 0/1 design matrix, sparse: ``sparse(idx) @ w`` scores every row with the
        weights ``w`` in a fraction of the time of ``w[idx].sum(axis=1)`` (same sums, added in
        another order)."""
        n, k = idx.shape
        return sp.csr_matrix((np.ones(n * k), idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, self.n_features))

    def prior_precision(self, main: float, pair: float) -> np.ndarray:
        return np.concatenate([np.full(self.n_main, main), np.full(self.n_features - self.n_main, pair)])


def staircase(F: np.ndarray) -> np.ndarray:
    """Two objectives (minimised): the indices of the non-dominated rows of ``F``, sorted by the
    first objective, one of each set of duplicates (each strictly better in the second objective
    than every row before it in lexicographic order)."""
    order = np.lexsort((F[:, 1], F[:, 0]))
    y = F[order, 1]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], y[:-1]]))
    return order[y < best_before]


def additive_epsilon(P: np.ndarray, front: np.ndarray) -> np.ndarray:
    """For each row ``p`` of ``P``: ``max over f in front of min_j (p_j - f_j)``, what must be
    subtracted from ``p`` before no front point dominates it (all minimised; < 0: ``p`` is
    already non-dominated). With two objectives this takes O(log |front|) per row instead of
    |front|: only the front's non-dominated points can give the maximum (a point weakly dominated
    by another gives a minimum no larger), and along those, sorted by the first objective,
    ``p_0 - f_0`` falls while ``p_1 - f_1`` rises, so the maximum of the smaller of the two is
    where they cross. The same differences are compared, so the result is the brute force's."""
    if P.shape[1] != 2 or len(front) < 8:
        return (P[:, None, :] - front[None, :, :]).min(axis=2).max(axis=1)
    f = front[staircase(front)]
    cross = np.searchsorted(f[:, 0] - f[:, 1], P[:, 0] - P[:, 1])
    out = np.full(len(P), -np.inf)
    for shift in (-2, -1, 0, 1):  # rounding may move the crossing by one: look on both sides
        j = np.clip(cross + shift, 0, len(f) - 1)
        out = np.maximum(out, np.minimum(P[:, 0] - f[j, 0], P[:, 1] - f[j, 1]))
    return out


class Posterior:
    """The posterior of a Bayesian linear regression ``y = A w + e``,
    ``w ~ N(0, diag(1/prior_precision))``, ``e ~ N(0, noise^2)``, factorised once so that many
    draws (a batch of proposals) cost one solve each. ``gram``: ``A.T @ A`` when the
    caller already has it (several objectives share one design matrix)."""

    def __init__(self, A: np.ndarray, y: np.ndarray, prior_precision: np.ndarray, noise: float,
                 gram: np.ndarray | None = None):
        self.A, self.y, self.noise = A, y, noise
        n, p = A.shape
        self.d_inv = 1.0 / prior_precision
        self.dual = n < p
        self._L: np.ndarray | None = None
        if self.dual:  # Matheron's rule: a prior draw, corrected by the data (an n x n solve)
            self.K = (A * self.d_inv) @ A.T + noise**2 * np.eye(n)
        else:
            self.P = (A.T @ A if gram is None else gram) / noise**2 + np.diag(prior_precision)
            self._mean = np.linalg.solve(self.P, A.T @ y / noise**2)

    def mean(self) -> np.ndarray:
        """The posterior mean of the weights."""
        if self.dual:
            return self.d_inv * (self.A.T @ np.linalg.solve(self.K, self.y))
        return self._mean

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One draw of the weights."""
        if self.dual:
            n, p = self.A.shape
            w0 = rng.standard_normal(p) * np.sqrt(self.d_inv)
            eps = rng.standard_normal(n) * self.noise
            return w0 + self.d_inv * (self.A.T @ np.linalg.solve(self.K, self.y - self.A @ w0 - eps))
        if self._L is None:  # factorised on the first draw (a mean needs no Cholesky factor)
            self._L = np.linalg.cholesky(self.P)
        # a triangular solve, O(p^2): what a general solve of L.T gives (its LU factors are L.T
        # itself, no pivoting), without the O(p^3) factorisation on every draw
        z = rng.standard_normal(self.A.shape[1])
        return self._mean + solve_triangular(self._L, z, lower=True, trans="T", check_finite=False)


def posterior_sample(A: np.ndarray, y: np.ndarray, prior_precision: np.ndarray, noise: float,
                     rng: np.random.Generator | None) -> np.ndarray:
    """One draw of the weights of a Bayesian linear regression ``y = A w + e``,
    ``w ~ N(0, diag(1/prior_precision))``, ``e ~ N(0, noise^2)``; the posterior mean when
    ``rng`` is None."""
    post = Posterior(A, y, prior_precision, noise)
    return post.mean() if rng is None else post.sample(rng)


class ThompsonStrategy:
    name = "thompson"

    def __init__(self, space, objectives: list[str], constraints: dict[str, float], seed: int,
                 n_init: int = 5, prior_main: float = 1.0, prior_pair: float = 50.0, noise: float = 0.4,
                 pairwise: bool = True, enumerate_limit: int = 50_000, pool_size: int = 3000,
                 local_centres: int = 5, primary_every: int = 3, primary_start: int = 25,
                 pending_in_front: bool = False):
        if n_init < 1:
            raise ValueError(f"n_init must be >= 1, got {n_init}")
        if primary_every < 0 or primary_start < 0:
            raise ValueError(f"primary_every and primary_start must be >= 0, got {primary_every}, {primary_start}")
        if min(prior_main, prior_pair, noise) <= 0:
            raise ValueError("prior_main, prior_pair and noise must be > 0")
        self.space = space
        self.archive = Archive(objectives, constraints)
        self.rng = np.random.default_rng(seed)
        self.n_init, self.noise = n_init, noise
        self.primary_every, self.primary_start = primary_every, primary_start
        self.pool_size, self.local_centres = pool_size, local_centres
        self.pending_in_front = pending_in_front
        self.features = InteractionFeatures(space.upper_bounds, pairwise)
        self.prior = self.features.prior_precision(prior_main, prior_pair)
        self._asked: set[Genome] = set()
        # what was told, one row per distinct genome in arrival order, kept as it arrives so that
        # an ask does not rebuild it from the archive (the values, objectives, constraints, ok)
        self._told: dict[Genome, int] = {}
        self._told_rows: list[tuple[tuple[int, ...], np.ndarray, np.ndarray, bool]] = []
        # A.T @ A of the design matrix of everything told, summed as results arrive: its entries
        # are counts (products of 0/1 features), exact in any order, so it equals the product
        self._gram = np.zeros((self.features.n_features, self.features.n_features))
        size = float(np.prod((np.asarray(space.upper_bounds, dtype=float) + 1)))
        self._all: np.ndarray | None = None  # every genome of the space (an object array), when enumerated
        if size <= enumerate_limit:
            grid = itertools.product(*(range(int(u) + 1) for u in space.upper_bounds))
            genomes = list(dict.fromkeys(space.canonical(list(v)) for v in grid))
            self._all = np.empty(len(genomes), dtype=object)
            self._all[:] = genomes
            self._all_X = self.features.sparse(self.features.indices(np.array([g.values for g in self._all])))
            self._pos = {g: i for i, g in enumerate(self._all)}
            self._taken = np.zeros(len(self._all), bool)  # asked or told: never proposed again

    # ------------------------------------------------------------------ candidates
    def _candidates(self, also: list[Genome]) -> tuple[Sequence[Genome], sp.csr_matrix]:
        """The genomes to score (neither asked nor told before, nor in ``also``) and their
        (sparse) design matrix."""
        if self._all is not None:
            keep = ~self._taken
            keep[[self._pos[g] for g in also if g in self._pos]] = False
            rows = np.flatnonzero(keep)
            return self._all[rows], self._all_X[rows]
        taken = set(self.archive.results) | self._asked | set(also)
        pool = fresh_samples(self.space, self.rng, self.pool_size, taken)
        seen = set(pool) | taken
        for centre in self._best_evaluated(self.local_centres):
            for nb in neighbours(self.space, centre):
                if nb not in seen:
                    seen.add(nb)
                    pool.append(nb)
        if not pool:
            return pool, sp.csr_matrix((0, self.features.n_features))
        return pool, self.features.sparse(self.features.indices(np.array([g.values for g in pool])))

    def _best_evaluated(self, k: int) -> list[Genome]:
        gs = list(self.archive.results)
        if not gs:
            return []
        F = np.array([self.archive.F(g) for g in gs])
        viol = np.array([np.maximum(self.archive.G(g), 0).sum() for g in gs])
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

        rank = np.zeros(len(gs))
        for r, front in enumerate(NonDominatedSorting().do(F)):
            rank[front] = r
        order = np.lexsort((F[:, 0], rank, viol > 0))
        return [gs[i] for i in order[:k]]

    # ------------------------------------------------------------------ proposals
    def ask(self, n: int) -> list[Genome]:
        start = len(self.archive) + len(self._asked)
        out: list[Genome] = []
        if start < self.n_init:
            out = fresh_samples(self.space, self.rng, min(n, self.n_init - start),
                                set(self.archive.results) | self._asked)
        if len(out) < n:
            out += self._model_proposals(n - len(out), out, first=start + len(out))
        self._asked.update(out)
        self._mark_taken(out)
        return out

    def _mark_taken(self, genomes) -> None:
        if self._all is not None:
            self._taken[[self._pos[g] for g in genomes if g in self._pos]] = True

    def _model_proposals(self, n: int, also: list[Genome], first: int) -> list[Genome]:
        """``n`` proposals, none of them in ``also``; ``first`` is the run-wide number of the
        first of them."""
        cands, X = self._candidates(also)
        if len(cands) == 0:
            return []
        if len(self._told_rows) < 2:  # nothing to learn from yet (e.g. everything asked is still in flight)
            pick = self.rng.choice(len(cands), size=min(n, len(cands)), replace=False)
            return [cands[int(i)] for i in pick]
        # a fixed (sorted) order: the fit, and so the proposals, do not depend on the order in
        # which results arrived (asynchronous or multi-worker evaluation)
        values = np.array([r[0] for r in self._told_rows])
        order = np.lexsort(values.T[::-1])  # the genomes' value tuples, in lexicographic order
        rows = [self._told_rows[i] for i in order]
        A = self.features.dense(self.features.indices(values[order]))
        F = np.array([r[1] for r in rows])
        G = np.array([r[2] for r in rows]).reshape(len(rows), -1)
        ok = np.array([r[3] for r in rows])
        Z = np.column_stack([normal_scores(F[:, j]) for j in range(F.shape[1])])  # minimised
        # constraints: the posterior mean of a model of each standardised violation, fitted on
        # successful runs only (the sign matters, so no rank transform), decides feasibility
        violation = np.zeros(len(cands))
        if ok.sum() >= 2:
            for j in range(G.shape[1]):
                mu, sd = G[ok, j].mean(), G[ok, j].std() + 1e-12
                w = posterior_sample(A[ok], (G[ok, j] - mu) / sd, self.prior, self.noise, None)
                violation += np.maximum(X @ w * sd + mu, 0) / sd
        free = np.ones(len(cands), bool)
        out: list[Genome] = []
        front = Z[self._front_mask(F, G)]
        # the data do not change within one ask: each objective's posterior is factorised once
        gram = self._gram if len(A) >= A.shape[1] else None
        posteriors = [Posterior(A, Z[:, j], self.prior, self.noise, gram) for j in range(Z.shape[1])]
        # pending_in_front: candidates still in flight (asynchronous evaluation) count as part of the
        # front at their sampled values, as the earlier picks of one batch do, so that new proposals
        # go where neither the results nor the evaluations under way reach. Measured on NAS-Bench-201
        # at 8 to 1,000 simulated workers it did not help (benchmarks/results/README.md), so it is off
        pending = sorted(self._asked, key=lambda g: g.values) if self.pending_in_front and Z.shape[1] > 1 else []
        Xp = self.features.sparse(self.features.indices(np.array([g.values for g in pending]))) if pending else None
        for k in range(min(n, len(cands))):
            draws = [post.sample(self.rng) for post in posteriors]
            pred = np.column_stack([X @ w for w in draws])
            scored_front = front
            if Xp is not None:
                Pp = np.column_stack([Xp @ w for w in draws])
                scored_front = np.vstack([front, Pp[staircase(Pp) if Pp.shape[1] == 2 else non_dominated(Pp)]])
            if (free & (violation <= 0)).any():
                i = self._choose(pred, free & (violation <= 0), scored_front, primary=self._primary_step(first + k))
            else:  # nothing is predicted feasible: the candidate predicted closest to feasibility
                i = int(np.flatnonzero(free)[np.argmin(violation[free])])
            free[i] = False
            out.append(cands[i])
            front = np.vstack([front, pred[i]])  # later picks of this batch see this one as taken
        return out

    @staticmethod
    def _front_mask(F: np.ndarray, G: np.ndarray) -> np.ndarray:
        from nas.pareto import non_dominated

        feasible = (np.maximum(G, 0).sum(axis=1) <= 0) if G.shape[1] else np.ones(len(F), bool)
        mask = np.zeros(len(F), bool)
        rows = np.flatnonzero(feasible) if feasible.any() else np.arange(len(F))
        mask[rows[non_dominated(F[rows])]] = True
        return mask

    def _primary_step(self, proposal: int) -> bool:
        """Whether proposal number ``proposal`` (0-based, counted over the whole run) optimises
        the primary objective alone: every ``primary_every``-th one from ``primary_start`` on."""
        if self.primary_every <= 0 or proposal < self.primary_start:
            return False
        return (proposal - self.primary_start) % self.primary_every == self.primary_every - 1

    def _choose(self, pred: np.ndarray, pool: np.ndarray, front: np.ndarray, primary: bool = False) -> int:
        rows = np.flatnonzero(pool)
        P = pred[rows]
        if P.shape[1] == 1 or primary:
            return int(rows[np.argmin(P[:, 0])])
        # additive epsilon to subtract from a candidate before no front point dominates it
        # (< 0: it is already non-dominated, so it would enlarge the hypervolume)
        eps = additive_epsilon(P, front)
        nd = np.flatnonzero(eps < 0)
        if len(nd) == 0:
            return int(rows[np.argmin(eps)])
        from pymoo.indicators.hv import HV

        from nas.pareto import non_dominated

        cand = nd[non_dominated(P[nd])]
        ref = np.maximum(front.max(axis=0), P[cand].max(axis=0)) + 1.0
        hv = HV(ref_point=ref)
        base = hv(front)
        gains = np.array([hv(np.vstack([front, P[c]])) - base for c in cand])
        return int(rows[cand[int(np.argmax(gains))]])

    def tell(self, results: list[EvaluationResult]) -> None:
        self.archive.add(results)
        new: list[tuple[int, ...]] = []
        for r in results:
            self._asked.discard(r.genome)
            g = r.genome
            if g not in self._told:  # the archive keeps a genome's first result; so does this
                self._told[g] = len(self._told_rows)
                self._told_rows.append((g.values, self.archive.F(g), self.archive.G(g), self.archive.results[g].ok))
                new.append(g.values)
        if new:
            B = self.features.dense(self.features.indices(np.array(new)))
            self._gram += B.T @ B
        self._mark_taken([r.genome for r in results])

"""The Thompson-sampling strategy's model: features, posterior, and how it chooses."""

import itertools

import numpy as np
import pytest

from nas.config import SpaceConfig
from nas.evaluators import LocalPool
from nas.genome import EvaluationResult, Genome
from nas.spaces.elastic import ElasticSpace
from nas.spaces.nb201 import NB201Space
from nas.strategies.thompson import (InteractionFeatures, Posterior, ThompsonStrategy, additive_epsilon, normal_scores,
                                     posterior_sample)


def test_interaction_features_index_every_gene_and_pair_once():
    f = InteractionFeatures(np.array([4, 4, 2]))
    assert f.n_features == 5 + 5 + 3 + 25 + 15 + 15
    grid = np.array(list(itertools.product(range(5), range(5), range(3))))
    idx = f.indices(grid)
    assert idx.shape == (75, 3 + 3)
    dense = f.dense(idx)
    assert (dense.sum(axis=1) == 6).all()
    # each pair block is hit by exactly the genomes with that pair of values
    pair_cols = dense[:, f.n_main:]
    assert (pair_cols.sum(axis=0) > 0).all()
    assert len({tuple(r) for r in idx}) == 75


def test_posterior_recovers_an_additive_function_in_both_forms():
    rng = np.random.default_rng(0)
    f = InteractionFeatures(np.array([4] * 6))
    true = np.zeros(f.n_features)
    true[: f.n_main] = rng.normal(size=f.n_main)
    X = rng.integers(0, 5, size=(300, 6))
    A = f.dense(f.indices(X))
    y = A @ true
    prior = f.prior_precision(1.0, 100.0)
    Xt = rng.integers(0, 5, size=(200, 6))
    At = f.dense(f.indices(Xt))
    for n in (60, 300):  # n < p = 405: the dual form (Matheron)
        mean = posterior_sample(A[:n], y[:n], prior, 0.05, None)
        assert np.corrcoef(At @ mean, At @ true)[0, 1] > 0.95
    big = np.vstack([A] * 2)  # n = 600 > p = 405: the primal form
    draw = posterior_sample(big, np.concatenate([y, y]), prior, 0.05, np.random.default_rng(1))
    assert np.corrcoef(At @ draw, At @ true)[0, 1] > 0.95


def test_a_posterior_factorised_once_draws_what_separate_draws_would():
    """A batch of proposals shares one factorisation per objective; each draw must be the one a
    fresh ``posterior_sample`` would give from the same generator state, in both forms."""
    rng = np.random.default_rng(3)
    f = InteractionFeatures(np.array([4] * 6))
    for n in (50, 700):  # dual (n < p = 405) and primal
        A = f.dense(f.indices(rng.integers(0, 5, size=(n, 6))))
        y = rng.normal(size=n)
        prior = f.prior_precision(1.0, 50.0)
        post = Posterior(A, y, prior, 0.4, A.T @ A if n >= A.shape[1] else None)
        r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
        for _ in range(3):
            assert np.array_equal(post.sample(r1), posterior_sample(A, y, prior, 0.4, r2))


def test_a_draw_solves_the_triangular_factor_as_a_general_solve_would():
    """A draw is ``mean + L^-T z``; a triangular solve (O(p^2)) replaces the general solve of
    ``L.T`` (O(p^3) per draw) and must give the same weights."""
    rng = np.random.default_rng(4)
    f = InteractionFeatures(np.array([4] * 6))
    A = f.dense(f.indices(rng.integers(0, 5, size=(900, 6))))
    post = Posterior(A, rng.normal(size=900), f.prior_precision(1.0, 50.0), 0.4, A.T @ A)
    r1, r2 = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(5):
        draw = post.sample(r1)
        reference = post.mean() + np.linalg.solve(post._L.T, r2.standard_normal(A.shape[1]))
        np.testing.assert_allclose(draw, reference, rtol=1e-12, atol=1e-12)


def test_the_sparse_design_matrix_scores_as_the_gathered_sum():
    rng = np.random.default_rng(6)
    f = InteractionFeatures(np.array([4] * 6))
    idx = f.indices(rng.integers(0, 5, size=(500, 6)))
    X, w = f.sparse(idx), rng.normal(size=f.n_features)
    np.testing.assert_allclose(X @ w, w[idx].sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(X.toarray(), f.dense(idx))
    rows = np.array([3, 10, 499])
    np.testing.assert_allclose(X[rows] @ w, w[idx[rows]].sum(axis=1), rtol=1e-12, atol=1e-12)


class _GatheredRows:
    """The design matrix as the strategy used it before it went sparse: rows of feature indices,
    scored by summing the gathered weights."""

    def __init__(self, idx):
        self.idx = idx
        self.shape = (len(idx), 0)

    def __getitem__(self, rows):
        return _GatheredRows(self.idx[rows])

    def __matmul__(self, w):
        return w[self.idx].sum(axis=1)


def _reference_thompson(monkeypatch):
    """Patch the module back to the straightforward computation: a general solve per draw and the
    gathered sum as the score."""
    import nas.strategies.thompson as th

    monkeypatch.setattr(th, "solve_triangular", lambda L, z, **kw: np.linalg.solve(L.T, z))
    monkeypatch.setattr(th.InteractionFeatures, "sparse", lambda self, idx: _GatheredRows(idx))


def _tell_some(s, batch, rng, w, cost, told):
    """Tell a random part of the batch (the rest stays in flight), as asynchronous evaluation does."""
    keep = [g for g in batch if rng.random() < 0.7] or batch[:1]
    told += keep
    s.tell([_conflicting_result(g, w, cost) for g in keep])


def test_the_fast_paths_propose_exactly_what_the_straightforward_computation_does(monkeypatch):
    """Two objectives, batches with results in flight, through both posterior forms (fewer and more
    evaluations than the 405 features): the same seed gives the same proposals with the sparse
    scores and triangular solves as with a general solve per draw and the gathered sum; the Gram
    matrix summed as results arrive equals the product of the whole design matrix."""
    rng = np.random.default_rng(8)
    cost = np.tile(np.arange(5.0), (6, 1))
    w = rng.uniform(size=(6, 5)) + cost * 0.5
    w[0, 1] += 2.0 * (w[3, 1] > 0)  # an interaction the additive part cannot fit alone

    def run():
        s = ThompsonStrategy(NB201Space(), ["val_accuracy", "latency_ms"], {}, seed=3)
        asked, told, tells = [], [], np.random.default_rng(1)
        while len(told) < 480:
            batch = s.ask(16)
            asked += batch
            _tell_some(s, batch, tells, w, cost, told)
        return s, asked, told

    fast, asked_fast, told = run()
    # the kept Gram matrix is the product of the design matrix of everything told
    A = fast.features.dense(fast.features.indices(np.array([g.values for g in fast.archive.results])))
    assert len(A) > A.shape[1]  # the primal form was reached
    np.testing.assert_array_equal(fast._gram, A.T @ A)
    with monkeypatch.context() as m:
        _reference_thompson(m)
        _, asked_ref, _ = run()
    assert asked_fast == asked_ref


def test_told_rows_keep_the_first_result_and_told_genomes_are_never_proposed():
    """A genome told twice keeps its first result (as the archive does), and a genome told without
    being asked (a warm start, a replayed checkpoint) is not proposed afterwards."""
    space = NB201Space()
    rng = np.random.default_rng(9)
    cost = np.tile(np.arange(5.0), (6, 1))
    w = rng.uniform(size=(6, 5))
    s = ThompsonStrategy(space, ["val_accuracy", "latency_ms"], {}, seed=0, n_init=2)
    warm = [space.sample(rng) for _ in range(40)]
    s.tell([_conflicting_result(g, w, cost) for g in warm])
    first = _conflicting_result(warm[0], w, cost)
    again = EvaluationResult(genome=warm[0], metrics={"val_accuracy": -5.0, "latency_ms": 99.0})
    s.tell([again])
    row = s._told_rows[s._told[warm[0]]]
    np.testing.assert_array_equal(row[1], s.archive.F(warm[0]))
    assert s.archive.results[warm[0]].metrics == first.metrics
    proposed = []
    for _ in range(10):
        batch = s.ask(20)
        proposed += batch
        s.tell([_conflicting_result(g, w, cost) for g in batch])
    assert not set(proposed) & set(warm) and len(set(proposed)) == len(proposed) == 200


def test_the_two_objective_additive_epsilon_is_the_brute_forces():
    rng = np.random.default_rng(0)
    for t in range(600):
        m, n = int(rng.integers(1, 60)), int(rng.integers(1, 200))
        if t % 3 == 0:  # a coarse grid: exact ties and duplicate front points
            front, P = rng.integers(0, 6, (m, 2)).astype(float), rng.integers(0, 6, (n, 2)).astype(float)
        elif t % 3 == 1:
            front, P = rng.standard_normal((m, 2)), rng.standard_normal((n, 2))
        else:  # large values: differences round
            front = np.round(rng.standard_normal((m, 2)), 1) * 1e8 + rng.standard_normal((m, 2))
            P = np.round(rng.standard_normal((n, 2)), 1) * 1e8
        brute = (P[:, None, :] - front[None, :, :]).min(axis=2).max(axis=1)
        assert np.array_equal(additive_epsilon(P, front), brute)
    P3, F3 = rng.standard_normal((30, 3)), rng.standard_normal((20, 3))  # three objectives: the brute force
    assert np.array_equal(additive_epsilon(P3, F3), (P3[:, None, :] - F3[None]).min(axis=2).max(axis=1))


def test_normal_scores_keep_the_order_and_tame_outliers():
    z = normal_scores(np.array([10.0, 94.0, 93.0, 94.3, 50.0]))
    assert list(np.argsort(z)) == [0, 4, 2, 1, 3]
    assert np.abs(z).max() < 1.5


def _additive_result(space, g: Genome, w: np.ndarray) -> EvaluationResult:
    acc = float(sum(w[e, v] for e, v in enumerate(g.values)))
    return EvaluationResult(genome=g, metrics={"val_accuracy": acc})


def test_finds_the_optimum_of_an_additive_cell_within_150_evaluations():
    space = NB201Space()
    w = np.random.default_rng(5).uniform(size=(6, 5))
    best = Genome(tuple(int(v) for v in w.argmax(axis=1)), "nb201")
    s = ThompsonStrategy(space, ["val_accuracy"], {}, seed=0)
    seen = []
    while len(seen) < 150 and best not in seen:
        asked = s.ask(1)
        seen += asked
        s.tell([_additive_result(space, g, w) for g in asked])
    assert best in seen, "an additive landscape must be solved far faster than random (1 in 15,625)"


def test_batches_are_distinct_and_in_flight_proposals_are_not_repeated():
    space = NB201Space()
    w = np.random.default_rng(1).uniform(size=(6, 5))
    s = ThompsonStrategy(space, ["val_accuracy"], {}, seed=0, n_init=3)
    first = s.ask(8)  # 3 random, then 5 from a model with nothing to learn from yet
    s.tell([_additive_result(space, g, w) for g in first[:4]])  # 4 still in flight
    second = s.ask(8)
    assert len(set(first + second)) == 16


def test_multi_objective_spreads_along_the_front():
    space = NB201Space()
    rng = np.random.default_rng(2)
    w = rng.uniform(size=(6, 5))
    cost = np.tile(np.arange(5.0), (6, 1))  # higher op index: more accurate and more costly
    w += cost * 0.5
    s = ThompsonStrategy(space, ["val_accuracy", "latency_ms"], {}, seed=0)
    told = []
    for _ in range(12):
        asked = s.ask(5)
        rs = [EvaluationResult(genome=g, metrics={"val_accuracy": float(sum(w[e, v] for e, v in enumerate(g.values))),
                                                  "latency_ms": float(sum(cost[e, v] for e, v in enumerate(g.values)))})
              for g in asked]
        s.tell(rs)
        told += rs
    lat = np.array([r.metrics["latency_ms"] for r in told[-30:]])
    assert lat.max() - lat.min() >= 8, "later proposals must cover cheap and costly ends of the front"


def _conflicting_result(g: Genome, w: np.ndarray, cost: np.ndarray) -> EvaluationResult:
    return EvaluationResult(genome=g, metrics={"val_accuracy": float(sum(w[e, v] for e, v in enumerate(g.values))),
                                               "latency_ms": float(sum(cost[e, v] for e, v in enumerate(g.values)))})


def test_primary_steps_follow_their_schedule_in_batches_too():
    s = ThompsonStrategy(NB201Space(), ["val_accuracy", "latency_ms"], {}, seed=0, primary_every=3, primary_start=25)
    assert [p for p in range(40) if s._primary_step(p)] == [27, 30, 33, 36, 39]
    off = ThompsonStrategy(NB201Space(), ["val_accuracy", "latency_ms"], {}, seed=0, primary_every=0)
    assert not any(off._primary_step(p) for p in range(100))
    # in a batched run the proposal numbers count what is in flight, so the schedule is the same
    rng = np.random.default_rng(2)
    w, cost = rng.uniform(size=(6, 5)), np.tile(np.arange(5.0), (6, 1))
    seen: list[bool] = []
    original = ThompsonStrategy._choose

    def spy(self, pred, pool, front, primary=False):
        i = original(self, pred, pool, front, primary)
        seen.append(primary)
        if primary:  # a primary step takes the best sampled first objective in the pool
            assert pred[i, 0] == pred[np.flatnonzero(pool), 0].min()
        return i

    s._choose = spy.__get__(s)
    asked: list[Genome] = []
    while len(asked) < 40:
        batch = s.ask(4)
        asked += batch
        s.tell([_conflicting_result(g, w, cost) for g in batch[:3]])  # one of each batch stays in flight
    assert [5 + k for k, p in enumerate(seen) if p] == [27, 30, 33, 36, 39]


def test_primary_steps_find_the_most_accurate_cell_on_a_conflicting_front():
    """Accuracy and cost conflict (the more accurate ops cost more): filling the front alone
    spreads 100 evaluations too thin to reach the most accurate cell; the primary steps reach it."""
    rng = np.random.default_rng(2)
    cost = np.tile(np.arange(5.0), (6, 1))
    w = rng.uniform(size=(6, 5)) + cost * 0.5
    best = Genome(tuple(int(v) for v in w.argmax(axis=1)), "nb201")

    def found(seed: int, **kw) -> bool:
        s = ThompsonStrategy(NB201Space(), ["val_accuracy", "latency_ms"], {}, seed=seed, **kw)
        seen: list[Genome] = []
        while len(seen) < 100 and best not in seen:
            asked = s.ask(1)
            seen += asked
            s.tell([_conflicting_result(g, w, cost) for g in asked])
        return best in seen

    with_steps = sum(found(seed) for seed in range(4))
    without = sum(found(seed, primary_every=0) for seed in range(4))
    assert with_steps >= 3 and without <= 1, (with_steps, without)


def test_constraints_on_an_open_space_are_learned():
    space = ElasticSpace(SpaceConfig())
    from tests.analytic import AnalyticEvaluator

    s = ThompsonStrategy(space, ["val_accuracy", "params"], {"max_params": 15000}, seed=4, n_init=8)
    ev, pool = AnalyticEvaluator(), LocalPool()
    fractions = []
    for _ in range(5):
        rs = pool.evaluate(ev, s.ask(10))
        s.tell(rs)
        fractions.append(np.mean([r.metrics["params"] <= 15000 for r in rs]))
    assert fractions[-1] >= 0.5 and np.mean(fractions[-2:]) > fractions[0]


@pytest.mark.parametrize("kw", [dict(n_init=0), dict(noise=0), dict(prior_pair=-1), dict(primary_every=-1),
                                dict(primary_start=-2)])
def test_bad_settings_are_rejected(kw):
    with pytest.raises(ValueError):
        ThompsonStrategy(NB201Space(), ["val_accuracy"], {}, seed=0, **kw)


def test_candidates_in_flight_count_as_part_of_the_front():
    """Asynchronous evaluation: the sampled values of the candidates still in flight join the front
    that a proposal is scored against (as the earlier picks of one batch do); with nothing in flight,
    or with ``pending_in_front=False``, the proposals are those of the plain rule."""
    rng = np.random.default_rng(2)
    cost = np.tile(np.arange(5.0), (6, 1))
    w = rng.uniform(size=(6, 5)) + cost * 0.5

    def run(pending_in_front: bool, keep_in_flight: bool):
        s = ThompsonStrategy(NB201Space(), ["val_accuracy", "latency_ms"], {}, seed=5,
                             pending_in_front=pending_in_front)
        fronts: list[int] = []
        original = s._choose

        def spy(pred, pool, front, primary=False):
            fronts.append(len(front))
            return original(pred, pool, front, primary)

        s._choose = spy
        asked, flight = [], []
        while len(asked) < 80:
            batch = s.ask(8)
            asked += batch
            flight += batch
            told, flight = (flight[:-8], flight[-8:]) if keep_in_flight else (flight, [])
            s.tell([_conflicting_result(g, w, cost) for g in told])
        return asked, fronts

    # nothing in flight at an ask (generational): the flag changes nothing
    assert run(True, False)[0] == run(False, False)[0]
    with_pending, fronts_with = run(True, True)
    without, fronts_without = run(False, True)
    assert with_pending != without
    # the same number of scored proposals, each against a front that includes what is in flight
    assert len(fronts_with) == len(fronts_without)
    assert sum(fronts_with) > sum(fronts_without)

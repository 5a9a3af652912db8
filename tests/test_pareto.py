
import numpy as np
import pytest

from nas.pareto import hypervolume, knee_point, non_dominated, spread_points


def brute_force_front(F):
    keep = []
    for i, a in enumerate(F):
        if not any((b <= a).all() and (b < a).any() for j, b in enumerate(F) if j != i):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_matches_brute_force(seed):
    F = np.random.default_rng(seed).integers(0, 6, size=(40, 3)).astype(float)
    assert list(non_dominated(F)) == brute_force_front(F)


def test_hypervolume_known_values():
    ideal, nadir = np.zeros(2), np.ones(2)
    # one point at the ideal dominates the whole 1.1 x 1.1 box
    assert hypervolume(np.array([[0.0, 0.0]]), ideal, nadir) == pytest.approx(1.0)
    # a point at (0.1, 0.1): (1.0 * 1.0) / 1.21
    assert hypervolume(np.array([[0.1, 0.1]]), ideal, nadir) == pytest.approx(1.0 / 1.21)
    # two points: union of rectangles
    F = np.array([[0.1, 0.6], [0.6, 0.1]])
    assert hypervolume(F, ideal, nadir) == pytest.approx((1.0 * 0.5 + 0.5 * 1.0 - 0.5 * 0.5) / 1.21)
    assert hypervolume(np.zeros((0, 2)), ideal, nadir) == 0.0
    # adding a dominated point changes nothing; adding a better one increases it
    assert hypervolume(np.vstack([F, [[0.7, 0.7]]]), ideal, nadir) == pytest.approx(hypervolume(F, ideal, nadir))
    assert hypervolume(np.vstack([F, [[0.2, 0.2]]]), ideal, nadir) > hypervolume(F, ideal, nadir)


def test_knee_of_a_convex_front():
    x = np.linspace(0, 1, 21)
    F = np.column_stack([x, (1 - np.sqrt(x)) ** 2])
    k = knee_point(F)
    assert 0.15 < x[k] < 0.4  # the bend of the curve, not an extreme
    F3 = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0.3, 0.3, 0.3]], float)
    assert knee_point(F3) == 3


def test_spread_points_cover_the_front():
    F = np.column_stack([np.arange(10.0), -np.arange(10.0)])
    picks = spread_points(F, 3)
    assert sorted(F[picks, 0]) == [0.0, 4.0, 9.0] or sorted(F[picks, 0]) == [0.0, 5.0, 9.0]
    assert spread_points(F, 0) == [] and len(spread_points(F[:2], 5)) == 2


def test_hypervolume_tracker_keeps_only_the_front_and_matches_the_hypervolume_of_everything():
    from nas.genome import EvaluationResult, Genome
    from nas.runners import HypervolumeTracker

    rng = np.random.default_rng(3)
    objectives = ["val_accuracy", "params", "latency_ms"]
    tracker = HypervolumeTracker(objectives, {"max_params": 0.9}, np.zeros(3), np.array([1.0, 1.0, 1.0]))
    seen = []
    for i in range(300):
        m = {"val_accuracy": float(rng.random()), "params": float(rng.random()), "latency_ms": float(rng.random())}
        if i % 7 == 0 and seen:
            m = dict(seen[int(rng.integers(len(seen)))])  # repeats a point already there
        status = "failed" if i % 11 == 0 else "ok"
        hv = tracker.add(EvaluationResult(Genome((i,), "toy"), m, status=status))
        if status == "ok" and m["params"] <= 0.9:
            seen.append(m)
        F = np.array([[-s["val_accuracy"], s["params"], s["latency_ms"]] for s in seen]).reshape(-1, 3)
        assert hv == pytest.approx(hypervolume(F, np.zeros(3), np.ones(3)), abs=1e-12)
    assert len(tracker.front) == len(np.unique(F[non_dominated(F)], axis=0)) < len(seen)
    assert [h["evaluations"] for h in tracker.history] == list(range(1, 301))

import numpy as np
import torch
from torch import nn

from nas.objectives import constraint_violations, count_flops, count_params, feasible, measure_latency_ms, to_minimise


def test_params_and_flops_match_hand_counts():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    assert count_params(m) == 4 * 9 + (256 * 10 + 10)
    # conv: 2 * (Cout*H*W) * (Cin*k*k) ; linear: 2 * in * out
    assert count_flops(m, (1, 8, 8)) == 2 * (4 * 64) * 9 + 2 * 256 * 10


def test_latency_is_positive_and_grows_with_work():
    small = nn.Conv2d(1, 1, 1)
    big = nn.Sequential(*[nn.Conv2d(64, 64, 3, padding=1) for _ in range(4)])
    torch.set_num_threads(1)
    s = measure_latency_ms(small, (1, 8, 8), repeats=10, warmup=2)
    b = measure_latency_ms(big, (64, 32, 32), repeats=5, warmup=1)
    assert 0 < s < b


def test_minimisation_convention_and_constraints():
    m = {"val_accuracy": 0.9, "params": 1000.0, "flops": 5.0, "latency_ms": 1.5}
    np.testing.assert_allclose(to_minimise(m, ["val_accuracy", "params"]), [-0.9, 1000.0])
    np.testing.assert_allclose(constraint_violations(m, {"max_params": 800, "min_val_accuracy": 0.95}), [200, 0.05])
    assert not feasible(m, {"max_params": 800})
    assert feasible(m, {"max_params": 1000, "max_latency_ms": 2})
    assert feasible(m, {})

"""Objectives and constraints: parameter count, FLOPs (torch's own counter), CPU latency.

All objectives are turned into minimisation form by :func:`to_minimise` (accuracy is
negated) so that pymoo and the Pareto tools see one convention.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas.config import CONSTRAINT_OBJECTIVE

MAXIMISE = {"val_accuracy", "val_soft_accuracy", "mean_score", "ensemble_score", "max_score"}


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass at batch size 1, by ``torch.utils.flop_counter``."""
    model.eval()
    x = torch.zeros((1, *input_shape))
    with FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


@torch.no_grad()
def measure_latency_ms(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 30, warmup: int = 5) -> float:
    """Median wall time of a batch-1 forward pass on the CPU after warm-up, in milliseconds."""
    model.eval()
    x = torch.zeros((1, *input_shape))
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(statistics.median(times))


def cost_metrics(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 30, warmup: int = 5) -> dict[str, float]:
    """The cost objectives of a built network: ``params``, ``flops`` and ``latency_ms``."""
    return {"params": float(count_params(model)), "flops": float(count_flops(model, input_shape)),
            "latency_ms": measure_latency_ms(model, input_shape, repeats, warmup)}


def to_minimise(metrics: dict[str, float], objectives: list[str]) -> np.ndarray:
    return np.array([-metrics[o] if o in MAXIMISE else metrics[o] for o in objectives], dtype=float)


def constraint_violations(metrics: dict[str, float], constraints: dict[str, float]) -> np.ndarray:
    """pymoo convention: each value <= 0 means satisfied."""
    out = []
    for name, limit in constraints.items():
        value = metrics[CONSTRAINT_OBJECTIVE[name]]
        out.append(limit - value if name.startswith("min_") else value - limit)
    return np.array(out, dtype=float)


def feasible(metrics: dict[str, float], constraints: dict[str, float]) -> bool:
    return bool((constraint_violations(metrics, constraints) <= 0).all()) if constraints else True

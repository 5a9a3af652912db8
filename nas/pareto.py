"""Pareto tools on minimisation matrices: non-dominated sets, hypervolume, knee and spread picks.

pymoo does the work underneath (non-dominated sorting, hypervolume). Hypervolume is
computed after normalising each objective by fixed bounds, so values from different runs
with the same bounds are comparable (1.0 would be a single point dominating the box).
"""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (duplicates all kept)."""
    F = np.asarray(F, float)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    return np.sort(NonDominatedSorting().do(F, only_non_dominated_front=True))


def normalise(F: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> np.ndarray:
    span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
    return (np.asarray(F, float) - ideal) / span


def hypervolume(F: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> float:
    """Hypervolume of ``F`` in the box [ideal, nadir] normalised to the unit cube, reference 1.1."""
    if len(F) == 0:
        return 0.0
    Fn = normalise(F, ideal, nadir)
    Fn = Fn[(Fn <= 1.1).all(axis=1)]
    if len(Fn) == 0:
        return 0.0
    ref = np.full(F.shape[1], 1.1)
    return float(HV(ref_point=ref)(Fn)) / float(np.prod(ref))


def knee_point(F: np.ndarray) -> int:
    """Index of the knee: the front point farthest below the hyperplane through the extremes,
    i.e. the largest normalised distance from the line between the best points of each objective
    (for two objectives the classic knee; in general the point closest to the ideal)."""
    F = np.asarray(F, float)
    if len(F) <= 2:
        return int(np.argmin(np.linalg.norm(normalise(F, F.min(0), F.max(0)), axis=1)))
    Fn = normalise(F, F.min(0), F.max(0))
    if F.shape[1] == 2:
        a, b = Fn[np.argmin(Fn[:, 0])], Fn[np.argmin(Fn[:, 1])]
        d = b - a
        norm = np.linalg.norm(d) or 1.0
        # signed distance below the line a->b (towards the ideal point)
        dist = ((Fn - a) @ np.array([d[1], -d[0]])) / norm
        return int(np.argmax(dist))
    return int(np.argmin(np.linalg.norm(Fn, axis=1)))


def spread_points(F: np.ndarray, k: int) -> list[int]:
    """``k`` indices spread evenly along the front by the first objective."""
    if k <= 0 or len(F) == 0:
        return []
    order = np.argsort(np.asarray(F, float)[:, 0], kind="stable")
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, min(k, len(order)))).astype(int))
    return [int(order[i]) for i in picks]

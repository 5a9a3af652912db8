"""Image augmentation policies in plain torch (no torchvision: it does not import beside our torch).

A policy is a list of ``[operation, probability level, magnitude level]`` entries, levels 0..10
(probability ``level / 10``; magnitude ``level / 10`` of the operation's largest change), as in
AutoAugment and PBA (Ho et al. 2019), who discretise both the same way. Applying a policy to a
batch goes through the entries in order; each entry changes each image with its probability.
Every random draw comes from a ``torch.Generator`` the caller seeds, so augmented training is
reproducible. Magnitude 0 is the identity for every operation.

Operations (largest change at magnitude 10): ``shift`` (25 % of the image side), ``rotate``
(30 degrees), ``shear`` (0.3), ``scale`` (zoom by up to 30 % in or out), ``cutout`` (a square of
half the side, filled with the image's mean), ``noise`` (Gaussian, std 0.5 of the normalised
pixel scale), ``contrast`` (scale deviations from the image's mean by 1 +- 0.8). The geometric
ones resample bilinearly and repeat the border (backgrounds stay backgrounds)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

OPS: dict[str, float] = {"shift": 0.25, "rotate": 30.0, "shear": 0.3, "scale": 0.3, "cutout": 0.5, "noise": 0.5,
                         "contrast": 0.8}
"""Each operation and its largest change (magnitude level 10)."""
LEVELS = 10

HAND_MADE: list[list] = [["shift", 5, 3], ["rotate", 5, 3]]
"""A hand-made policy (baseline of the benchmark): half the images shifted by up to 7.5 % of the
side, half rotated by up to 9 degrees."""


class PolicyError(ValueError):
    """A malformed augmentation policy."""


def check_policy(policy, ops=OPS) -> list[list]:
    """The policy as ``[[op, p_level, m_level], ...]`` with integer levels; raises :class:`PolicyError`."""
    if not isinstance(policy, (list, tuple)):
        raise PolicyError(f"an augmentation policy is a list of [operation, probability, magnitude], got {policy!r}")
    out = []
    for e in policy:
        if not (isinstance(e, (list, tuple)) and len(e) == 3):
            raise PolicyError(f"a policy entry is [operation, probability level, magnitude level], got {e!r}")
        op, p, m = e
        if op not in ops:
            raise PolicyError(f"unknown augmentation operation {op!r}; known: {', '.join(ops)}")
        for name, v in (("probability", p), ("magnitude", m)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= LEVELS:
                raise PolicyError(f"{name} level of {op!r} must be an integer in 0..{LEVELS}, got {v!r}")
        out.append([str(op), int(p), int(m)])
    return out


def _uniform(n: int, gen: torch.Generator, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (high - low) + low


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="border", align_corners=False)


def apply_op(x: torch.Tensor, op: str, magnitude: float, gen: torch.Generator) -> torch.Tensor:
    """``op`` at ``magnitude`` in [0, 1] (a fraction of its largest change) on every image of
    ``x`` (N, C, H, W), each with its own random direction and amount up to the magnitude."""
    if op not in OPS:
        raise PolicyError(f"unknown augmentation operation {op!r}; known: {', '.join(OPS)}")
    if magnitude <= 0 or len(x) == 0:
        return x
    n, amount = len(x), magnitude * OPS[op]
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).repeat(n, 1, 1)
    if op == "shift":
        theta = eye.clone()
        theta[:, :, 2] = torch.stack([_uniform(n, gen), _uniform(n, gen)], 1) * 2 * amount
        return _affine(x, theta)
    if op == "rotate":
        a = _uniform(n, gen) * math.radians(amount)
        c, s = torch.cos(a), torch.sin(a)
        theta = torch.stack([torch.stack([c, -s, torch.zeros(n)], 1), torch.stack([s, c, torch.zeros(n)], 1)], 1)
        return _affine(x, theta)
    if op == "shear":
        theta = eye.clone()
        theta[:, 0, 1] = _uniform(n, gen) * amount
        return _affine(x, theta)
    if op == "scale":
        z = 1.0 + _uniform(n, gen) * amount
        theta = eye.clone()
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / z
        return _affine(x, theta)
    if op == "cutout":
        h, w = x.shape[-2:]
        side = int(round(amount * min(h, w)))
        if side == 0:
            return x
        cy = (torch.rand(n, generator=gen) * h).long()
        cx = (torch.rand(n, generator=gen) * w).long()
        ys = torch.arange(h).view(1, h, 1)
        xs = torch.arange(w).view(1, 1, w)
        y0, x0 = (cy - side // 2).view(n, 1, 1), (cx - side // 2).view(n, 1, 1)
        box = ((ys >= y0) & (ys < y0 + side) & (xs >= x0) & (xs < x0 + side)).unsqueeze(1).to(x.device)
        fill = x.mean(dim=(1, 2, 3), keepdim=True)
        return torch.where(box, fill, x)
    if op == "noise":
        return x + torch.randn(x.shape, generator=gen).to(x.device, x.dtype) * amount
    # contrast
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    factor = (1.0 + _uniform(n, gen) * amount).view(n, 1, 1, 1).to(x.device, x.dtype)
    return mean + (x - mean) * factor


def apply_policy(x: torch.Tensor, policy: list[list], gen: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) augmented by ``policy`` (each entry changes each image with its probability)."""
    for op, p, m in policy:
        if p <= 0 or m <= 0:
            continue
        pick = torch.rand(len(x), generator=gen) < p / LEVELS
        if bool(pick.any()):
            x = x.clone()
            x[pick.to(x.device)] = apply_op(x[pick.to(x.device)], op, m / LEVELS, gen)
    return x


class Augmentation:
    """A policy as a callable ``augment(batch, generator, progress)`` for the training loops
    (``progress``, the share of training done, is ignored: the policy is the same throughout)."""

    def __init__(self, policy):
        self.policy = check_policy(policy)

    def __call__(self, x: torch.Tensor, gen: torch.Generator, progress: float = 0.0) -> torch.Tensor:
        return apply_policy(x, self.policy, gen)

    def __repr__(self) -> str:
        return f"Augmentation({to_text(self.policy)})"


class ScheduledAugmentation:
    """A schedule, as PBA learns one (Ho et al. 2019): ``phases`` policies, each applied for an
    equal share of training; ``progress`` in [0, 1) picks the phase."""

    def __init__(self, phases):
        self.phases = check_phases(phases)

    def phase(self, progress: float) -> int:
        return min(max(int(progress * len(self.phases)), 0), len(self.phases) - 1)

    def __call__(self, x: torch.Tensor, gen: torch.Generator, progress: float = 0.0) -> torch.Tensor:
        return apply_policy(x, self.phases[self.phase(progress)], gen)

    def __repr__(self) -> str:
        return f"ScheduledAugmentation({schedule_text(self.phases)})"


def check_phases(phases, ops=OPS) -> list[list[list]]:
    """A schedule as a list of at least one policy; raises :class:`PolicyError`."""
    if not isinstance(phases, (list, tuple)) or not phases:
        raise PolicyError(f"an augmentation schedule is a non-empty list of policies (one per phase), got {phases!r}")
    return [check_policy(p, ops) for p in phases]


def check_value(value) -> dict:
    """An augmentation component value: ``{"policy": [...]}`` (one policy throughout training) or
    ``{"phases": [[...], ...]}`` (a schedule); raises :class:`PolicyError`."""
    if not isinstance(value, dict) or set(value) not in ({"policy"}, {"phases"}):
        raise PolicyError(f"an augmentation is {{\"policy\": [...]}} or {{\"phases\": [[...], ...]}}, got {value!r}")
    if "phases" in value:
        return {"phases": check_phases(value["phases"])}
    return {"policy": check_policy(value["policy"])}


def from_value(value: dict):
    """The training-loop callable of an augmentation value (None when it changes nothing)."""
    if "phases" in value:
        return ScheduledAugmentation(value["phases"]) if any(value["phases"]) else None
    return Augmentation(value["policy"]) if value["policy"] else None


def to_text(policy: list[list]) -> str:
    return ", ".join(f"{op}(p={p / LEVELS:.1f}, m={m / LEVELS:.1f})" for op, p, m in policy) or "none"


def schedule_text(phases: list[list[list]]) -> str:
    return "; ".join(f"phase {i + 1}/{len(phases)}: {to_text(p)}" for i, p in enumerate(phases))


def value_text(value: dict) -> str:
    return schedule_text(value["phases"]) if "phases" in value else to_text(value["policy"])


# ------------------------------------------------------------------------------------------
# evolution
# ------------------------------------------------------------------------------------------
def random_policy(rng: np.random.Generator, ops: list[str], max_ops: int) -> list[list]:
    k = int(rng.integers(1, max_ops + 1))
    return [[str(rng.choice(ops)), int(rng.integers(0, LEVELS + 1)), int(rng.integers(0, LEVELS + 1))]
            for _ in range(k)]


def mutate_schedule(phases: list[list[list]], rng: np.random.Generator, ops: list[str], max_ops: int) -> list[list[list]]:
    """PBA's exploit and explore between the phases of a schedule: with probability 1/4 one
    phase takes a copy of its neighbour's policy (schedules stay smooth, as PBA's do), else one
    phase gets :func:`mutate_policy`. Always returns a different schedule when one exists."""
    for _ in range(50):
        out = [[list(e) for e in p] for p in phases]
        i = int(rng.integers(len(out)))
        if len(out) > 1 and rng.random() < 0.25:
            j = i - 1 if i == len(out) - 1 or (i > 0 and rng.random() < 0.5) else i + 1
            out[i] = [list(e) for e in out[j]]
        else:
            out[i] = mutate_policy(out[i], rng, ops, max_ops)
        if out != phases:
            return out
    return phases


def mutate_policy(policy: list[list], rng: np.random.Generator, ops: list[str], max_ops: int) -> list[list]:
    """PBA's explore step on one entry (resample a level with probability 0.2, else move it by
    1-3 levels; or change the operation), or add / drop an entry. Always returns a different policy
    when one exists."""
    for _ in range(50):
        out = [list(e) for e in policy]
        kind = rng.choice(["level", "op", "add", "drop"], p=[0.6, 0.2, 0.1, 0.1])
        if kind == "add" and len(out) < max_ops:
            out.insert(int(rng.integers(len(out) + 1)), random_policy(rng, ops, 1)[0])
        elif kind == "drop" and len(out) > 1:
            out.pop(int(rng.integers(len(out))))
        elif kind == "op" and len(ops) > 1:
            e = out[int(rng.integers(len(out)))]
            e[0] = str(rng.choice([o for o in ops if o != e[0]]))
        else:
            e = out[int(rng.integers(len(out)))]
            j = int(rng.integers(1, 3))
            if rng.random() < 0.2:
                e[j] = int(rng.integers(0, LEVELS + 1))
            else:
                e[j] = int(np.clip(e[j] + rng.choice([-1, 1]) * int(rng.integers(1, 4)), 0, LEVELS))
        if out != policy:
            return out
    return policy

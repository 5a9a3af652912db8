"""Loss functions as third-order Taylor polynomials (TaylorGLO, Gonzalez & Miikkulainen 2021).

A loss is ``L(x, y) = -k_C/n sum_i sum_c f(x_ic, y_ic)`` over a batch of ``n`` examples of ``C``
classes, with ``x`` the softmax probabilities, ``y`` the one-hot targets and ``f`` the third-order
bivariate Taylor polynomial around ``(theta0, theta1)`` without the terms in ``y`` alone (they
have no gradient):

    f(x, y) = t2 (x-t0) + t3/2 (x-t0)^2 + t4/6 (x-t0)^3
              + t5 (x-t0)(y-t1) + t6/2 (x-t0)(y-t1)^2 + t7/2 (x-t0)^2 (y-t1)

The factor ``k_C`` is ours (TaylorGLO had ``1/n`` on 10-class data): the gradient reaching a logit
carries a factor ``x (1 - x)``, about ``1/C`` at the start of training, so without it a loss
trains ever slower as classes are added (on the default data, 136 classes, the unscaled expansion
of cross-entropy barely trained: 4 % validation accuracy where cross-entropy reached 35 %).
``k_C`` makes the expansion of cross-entropy at (0.5, 0.5) pull the true class's logit at a
uniform prediction exactly as hard as cross-entropy does (:func:`class_scale`), so a learning
rate tuned for cross-entropy suits the search's starting point, and a loss found on one dataset
keeps its scale on another with a different number of classes.

Eight numbers ``theta`` define a loss; CMA-ES searches them (:mod:`nas.strategies.cma_es`).
:func:`cross_entropy_theta` gives the coefficients of the expansion of ``y log x``, i.e. a
Taylor approximation of cross-entropy, a natural starting point."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

N_THETA = 8


def cross_entropy_theta(a: float = 0.5, b: float = 0.5) -> list[float]:
    """The coefficients that make ``f`` the third-order expansion of ``y log x`` at ``(a, b)``
    (derivatives: f_x = b/a, f_xx = -b/a^2, f_xxx = 2b/a^3, f_xy = 1/a, f_xyy = 0, f_xxy = -1/a^2)."""
    return [a, b, b / a, -b / a ** 2, 2 * b / a ** 3, 1 / a, 0.0, -1 / a ** 2]


def check_theta(theta) -> list[float]:
    t = [float(v) for v in theta]
    if len(t) != N_THETA:
        raise ValueError(f"a TaylorGLO loss has {N_THETA} coefficients, got {len(t)}")
    if not all(math.isfinite(v) for v in t):
        raise ValueError(f"TaylorGLO coefficients must be finite, got {t}")
    return t


def taylor_f(x, y, theta):
    """``f(x, y)`` element-wise, for torch tensors or NumPy arrays."""
    t0, t1, t2, t3, t4, t5, t6, t7 = theta
    dx, dy = x - t0, y - t1
    return (t2 * dx + t3 / 2 * dx ** 2 + t4 / 6 * dx ** 3 + t5 * dx * dy + t6 / 2 * dx * dy ** 2
            + t7 / 2 * dx ** 2 * dy)


@functools.lru_cache(maxsize=64)
def class_scale(n_classes: int) -> float:
    """``k_C``: cross-entropy's gradient on the true logit at a uniform prediction (``1/C - 1``)
    over the unscaled gradient of the expansion of cross-entropy at (0.5, 0.5)."""
    logits = torch.zeros(1, n_classes, dtype=torch.float64, requires_grad=True)
    x = F.softmax(logits, dim=1)
    y = F.one_hot(torch.tensor([0]), n_classes).to(x.dtype)
    (-taylor_f(x, y, cross_entropy_theta()).sum()).backward()
    return float((1.0 / n_classes - 1.0) / logits.grad[0, 0])


class TaylorGLOLoss(torch.nn.Module):
    """``loss(logits, targets)`` (targets: class indices), the mean over the batch."""

    def __init__(self, theta):
        super().__init__()
        self.theta = check_theta(theta)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = F.softmax(logits, dim=1)
        y = F.one_hot(target, logits.shape[1]).to(x.dtype)
        return -taylor_f(x, y, self.theta).sum(1).mean() * class_scale(int(logits.shape[1]))

    def extra_repr(self) -> str:
        return "theta=[" + ", ".join(f"{v:.4g}" for v in self.theta) + "]"


def numpy_loss(probs: np.ndarray, target: np.ndarray, theta) -> float:
    """The same loss in NumPy, from probabilities (tests)."""
    y = np.eye(probs.shape[1])[target]
    return float(-taylor_f(probs, y, check_theta(theta)).sum(1).mean() * class_scale(int(probs.shape[1])))

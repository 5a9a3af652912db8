"""Small, seeded torch training utilities shared by the supernet, evaluators and selection."""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.evaluators.base import check_deadline


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("evaluation.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | None = None,
            device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches, shuffled with ``rng`` when given (and in order otherwise)."""
    idx = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    for i in range(0, len(idx), batch_size):
        j = idx[i:i + batch_size]
        yield torch.from_numpy(x[j]).to(device), torch.from_numpy(y[j]).to(device)


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
             device: torch.device | str = "cpu", forward: Callable | None = None) -> float:
    model.eval()
    fwd = forward or model
    correct = 0
    for xb, yb in batches(x, y, batch_size, device=device):
        correct += int((fwd(xb).argmax(1) == yb).sum())
    return correct / max(len(y), 1)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: np.ndarray, n_batches: int, batch_size: int,
                   rng: np.random.Generator, device: torch.device | str = "cpu") -> None:
    """Recompute BatchNorm running statistics of an extracted subnet on a few training batches
    (cumulative average), as Once-for-All and MSuNAS do before scoring inherited weights."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    idx = rng.permutation(len(x))
    for i in range(n_batches):
        j = idx[(i * batch_size) % len(x):][:batch_size]
        if len(j) < 2:
            break
        model(torch.from_numpy(x[j]).to(device))
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def _sgd_step(model: nn.Module, lr: float, weight_decay: float, steps: int):
    """SGD with Nesterov momentum on a cosine schedule over ``steps``; returns ``step(logits, y,
    where)``, which takes one step on the cross-entropy and returns the loss. It stops at the
    candidate's deadline (``evaluation.timeout_s``) and raises :class:`DivergedError` on a
    non-finite loss."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))

    def step(logits: torch.Tensor, y: torch.Tensor, where: str) -> float:
        check_deadline()
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            raise DivergedError(f"loss became {loss.item()} in {where}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return float(loss.detach())

    return step


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch_size: int,
          rng: np.random.Generator, device: torch.device | str = "cpu", weight_decay: float = 3e-5,
          on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """SGD with Nesterov momentum and cosine schedule; returns the mean loss per epoch."""
    model.to(device)
    step = _sgd_step(model, lr, weight_decay, epochs * math.ceil(len(x) / batch_size))
    losses = []
    for ep in range(epochs):
        model.train()
        total, n = 0.0, 0
        for xb, yb in batches(x, y, batch_size, rng, device):
            total += step(model(xb), yb, f"epoch {ep}") * len(yb)
            n += len(yb)
        losses.append(total / max(n, 1))
        if on_epoch:
            on_epoch(ep, losses[-1])
    return losses


def train_multitask(model: nn.Module, x: np.ndarray, y: np.ndarray, t: np.ndarray, n_tasks: int, epochs: int,
                    lr: float, batch_size: int, rng: np.random.Generator, device: torch.device | str = "cpu",
                    weight_decay: float = 3e-5) -> list[float]:
    """Joint training of a multi-task model (``model(x, task)``): every epoch visits each
    task's examples once, in single-task mini-batches interleaved in a random order, so the
    shared parameters see every task throughout. SGD with Nesterov momentum and a cosine
    schedule, as :func:`train`; returns the mean loss per epoch."""
    model.to(device)
    per_task = [np.flatnonzero(t == k) for k in range(n_tasks)]
    step = _sgd_step(model, lr, weight_decay, epochs * sum(math.ceil(len(i) / batch_size) for i in per_task))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for ep in range(epochs):
        model.train()
        plan = []
        for k, idx in enumerate(per_task):
            idx = rng.permutation(idx)
            plan += [(k, idx[i:i + batch_size]) for i in range(0, len(idx), batch_size) if len(idx[i:i + batch_size]) > 1]
        total, n = 0.0, 0
        for j in rng.permutation(len(plan)):
            k, b = plan[int(j)]
            xb, yb = xt[b].to(device), yt[b].to(device)
            total += step(model(xb, int(k)), yb, f"epoch {ep} (task {k})") * len(b)
            n += len(b)
        losses.append(total / max(n, 1))
    return losses


@torch.no_grad()
def accuracy_by_task(model: nn.Module, x: np.ndarray, y: np.ndarray, t: np.ndarray, n_tasks: int,
                     batch_size: int = 256, device: torch.device | str = "cpu") -> list[float]:
    """Accuracy of ``model(x, task)`` on each task's examples."""
    model.eval().to(device)
    out = []
    for k in range(n_tasks):
        idx = np.flatnonzero(t == k)
        correct = 0
        for i in range(0, len(idx), batch_size):
            b = idx[i:i + batch_size]
            pred = model(torch.from_numpy(x[b]).to(device), k).argmax(1).cpu().numpy()
            correct += int((pred == y[b]).sum())
        out.append(correct / max(len(idx), 1))
    return out

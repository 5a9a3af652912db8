"""Small, seeded torch training utilities shared by the supernet, evaluators and selection."""

from __future__ import annotations

import contextlib
import math
import os
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.env import DEFAULTS, default_threads
from nas.evaluators.base import check_deadline


class DivergedError(RuntimeError):
    """Training produced a non-finite loss."""


@contextlib.contextmanager
def torch_threads(n: int | None = None):
    """Run a block with ``n`` torch threads (None: ``default_threads()``), then restore the
    previous count. The stages that train in the main process (supernet, fine-tuning) use this:
    the environment pins ``OMP_NUM_THREADS=1`` for the Dask workers, which would leave cores idle."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n or default_threads()))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> torch.device:
    """The torch device of ``evaluation.device`` (auto: CUDA when available). On CUDA, torch is made
    deterministic first (:func:`deterministic_cuda`), so a rerun on the same GPU repeats a run."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("evaluation.device is 'cuda' but no CUDA device is available")
    device = torch.device(name)
    if device.type == "cuda":
        deterministic_cuda()
    return device


CUBLAS_WORKSPACE = DEFAULTS["CUBLAS_WORKSPACE_CONFIG"]
"""cuBLAS's workspace setting that makes its matrix products repeatable (CUDA >= 10.2); the
environment defaults set it for every process evonas starts, Dask workers included."""


def deterministic_cuda() -> None:
    """Make this process's CUDA work repeatable: cuDNN's deterministic convolution algorithms (no
    benchmarking, which picks algorithms by timing), cuBLAS's fixed workspace, and torch's
    deterministic implementations wherever one exists (an op without one warns and runs anyway).
    On CPU torch is repeatable already; called before the first CUDA operation of the process
    (``resolve_device`` does), since cuBLAS reads its setting when it starts."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


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
    return accuracy_and_soft(model, x, y, batch_size, device, forward)[0]


@torch.no_grad()
def accuracy_and_soft(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
                      device: torch.device | str = "cpu", forward: Callable | None = None) -> tuple[float, float]:
    """Accuracy, and the *soft accuracy*: the mean softmax probability of the true class, which
    is the expected accuracy of a classifier that draws its answer from its softmax. On a few
    hundred validation images the soft accuracy carries far less sampling noise than the count of
    argmax hits, so it ranks networks more steadily (``benchmarks/supernet_ranking.py``)."""
    model.eval()
    fwd = forward or model
    correct, soft = 0, 0.0
    for xb, yb in batches(x, y, batch_size, device=device):
        logits = fwd(xb)
        correct += int((logits.argmax(1) == yb).sum())
        soft += float(torch.softmax(logits.double(), 1).gather(1, yb[:, None]).sum())
    n = max(len(y), 1)
    return correct / n, soft / n


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
    """SGD with Nesterov momentum on a cosine schedule over ``steps``; returns ``step(loss,
    where)``, which takes one step on ``loss`` and returns its value. It stops at the
    candidate's deadline (``evaluation.timeout_s``) and raises :class:`DivergedError` on a
    non-finite loss."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))

    def step(loss: torch.Tensor, where: str) -> float:
        check_deadline()
        if not torch.isfinite(loss):
            raise DivergedError(f"loss became {loss.item()} in {where}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return float(loss.detach())

    return step


def _loss_and_augment(recipe, rng: np.random.Generator):
    """The loss function and batch augmentation of a :class:`nas.meta.components.Recipe` (None:
    cross-entropy, no augmentation). The augmentation's torch generator is seeded from ``rng``
    (only when there is one, so plain training draws exactly what it always drew)."""
    if recipe is None or recipe.plain:
        return F.cross_entropy, None
    augment = recipe.augment_fn()
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31))) if augment is not None else None
    return recipe.loss_fn(), (lambda xb, progress: augment(xb, gen, progress)) if augment is not None else None


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch_size: int,
          rng: np.random.Generator, device: torch.device | str = "cpu", weight_decay: float = 3e-5,
          on_epoch: Callable[[int, float], None] | None = None, recipe=None) -> list[float]:
    """SGD with Nesterov momentum and cosine schedule; returns the mean loss per epoch.
    ``recipe`` (:class:`nas.meta.components.Recipe`): the loss and batch augmentation to train
    with (default: cross-entropy, none)."""
    model.to(device)
    step = _sgd_step(model, lr, weight_decay, epochs * math.ceil(len(x) / batch_size))
    loss_fn, augment = _loss_and_augment(recipe, rng)
    losses = []
    for ep in range(epochs):
        model.train()
        total, n = 0.0, 0
        for xb, yb in batches(x, y, batch_size, rng, device):
            if augment is not None:
                xb = augment(xb, ep / epochs)
            total += step(loss_fn(model(xb), yb), f"epoch {ep}") * len(yb)
            n += len(yb)
        losses.append(total / max(n, 1))
        if on_epoch:
            on_epoch(ep, losses[-1])
    return losses


def task_rows(t: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """``(task, row indices)`` for every task present in ``t`` (each row's task), tasks sorted."""
    return [(int(k), torch.nonzero(t == k).flatten()) for k in torch.unique(t).tolist()]


def task_logits(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(task, rows, logits)`` for every task present in a batch that mixes tasks (``t`` holds
    each row's task). Models with ``forward_mixed(x, t)`` compute it in one pass, so that the
    layers every task shares see the whole mixed batch (their batch-norm statistics are then
    those of the task mixture, as at test time); otherwise ``model(x[rows], task)`` per task."""
    if hasattr(model, "forward_mixed"):
        return model.forward_mixed(x, t)
    return [(k, rows, model(x[rows], k)) for k, rows in task_rows(t)]


def train_multitask(model: nn.Module, x: np.ndarray, y: np.ndarray, t: np.ndarray, n_tasks: int, epochs: int,
                    lr: float, batch_size: int, rng: np.random.Generator, device: torch.device | str = "cpu",
                    weight_decay: float = 3e-5, recipe=None) -> list[float]:
    """Joint training of a multi-task model (``model(x, task)``): every epoch visits every
    example once, in shuffled mini-batches that mix the tasks; each row goes through its own
    task's output and the step minimises the mean cross-entropy over the batch (see
    :func:`task_logits`). Mixed batches matter: with one task per batch, shared batch norm is
    trained on per-task statistics but tested with the mixture's, which costs several points
    of accuracy. SGD with Nesterov momentum and a cosine schedule, as :func:`train`; returns
    the mean loss per epoch."""
    if len(x) and (t.min() < 0 or t.max() >= n_tasks):
        raise ValueError(f"task indices must lie in [0, {n_tasks}), got {int(t.min())}..{int(t.max())}")
    model.to(device)
    step = _sgd_step(model, lr, weight_decay, epochs * math.ceil(len(x) / batch_size))
    loss_fn, augment = _loss_and_augment(recipe, rng)
    xt, yt, tt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(np.asarray(t, dtype=np.int64))
    losses = []
    for ep in range(epochs):
        model.train()
        idx = rng.permutation(len(x))
        total, n = 0.0, 0
        for i in range(0, len(idx), batch_size):
            b = torch.from_numpy(idx[i:i + batch_size])
            if len(b) < 2:  # batch norm cannot train on a single example
                continue
            xb, yb, tb = xt[b].to(device), yt[b].to(device), tt[b].to(device)
            if augment is not None:
                xb = augment(xb, ep / epochs)
            loss = sum(F.cross_entropy(logits, yb[rows], reduction="sum") if loss_fn is F.cross_entropy
                       else loss_fn(logits, yb[rows]) * len(rows) for _, rows, logits in task_logits(model, xb, tb))
            total += step(loss / len(b), f"epoch {ep}") * len(b)
            n += len(b)
        losses.append(total / max(n, 1))
    return losses


def accuracy_by_task(model: nn.Module, x: np.ndarray, y: np.ndarray, t: np.ndarray, n_tasks: int,
                     batch_size: int = 256, device: torch.device | str = "cpu") -> list[float]:
    """Accuracy of ``model(x, task)`` on each task's examples."""
    return accuracy_and_soft_by_task(model, x, y, t, n_tasks, batch_size, device)[0]


def accuracy_and_soft_by_task(model: nn.Module, x: np.ndarray, y: np.ndarray, t: np.ndarray, n_tasks: int,
                              batch_size: int = 256,
                              device: torch.device | str = "cpu") -> tuple[list[float], list[float]]:
    """Accuracy and soft accuracy (:func:`accuracy_and_soft`) of ``model(x, task)`` on each task's examples."""
    model.to(device)
    accs, softs = [], []
    for k in range(n_tasks):
        idx = np.flatnonzero(t == k)
        acc, soft = accuracy_and_soft(model, x[idx], y[idx], batch_size, device, forward=lambda xb, k=k: model(xb, k))
        accs.append(acc)
        softs.append(soft)
    return accs, softs

"""Torch builders for multi-task networks (see :mod:`nas.spaces.multitask`).

Both take ``forward(x, task)`` with a Python ``int`` task index and return that task's
logits. :class:`TaskView` fixes the task, giving an ordinary one-input model for export,
latency measurement and AutoInit (``torch.fx`` traces it with the task as a constant).
"""

from __future__ import annotations

import torch
from torch import nn

from nas.genome import Genome
from nas.spaces.codeepneat import from_dict
from nas.spaces.codeepneat_build import GraphNet, to_vector
from nas.training import task_rows


class TaskView(nn.Module):
    """``net`` seen as a single-task model: ``forward(x) = net(x, task)``."""

    def __init__(self, net: nn.Module, task: int):
        super().__init__()
        self.net = net
        self.task = int(task)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.task)


def _heads(shape: tuple[int, ...], task_classes: list[int]) -> tuple[nn.Module, nn.ModuleList]:
    pool = to_vector(torch.Size((1, *shape))) if len(shape) == 3 else nn.Identity()
    with torch.no_grad():
        features = int(pool(torch.zeros(1, *shape)).shape[1])
    return pool, nn.ModuleList(nn.Linear(features, int(k)) for k in task_classes)


def _summed(xs: list[torch.Tensor]) -> torch.Tensor:
    """What a route node takes in: the sum of its predecessors' outputs."""
    h = xs[0]
    for x in xs[1:]:
        h = h + x
    return h


class HeadsNet(nn.Module):
    """One evolved CoDeepNEAT network shared by every task, one linear head per task."""

    def __init__(self, space, genome: Genome, input_shape: tuple[int, ...], task_classes: list[int]):
        super().__init__()
        self.trunk = GraphNet(space.layer_graph(genome), input_shape, None)
        self.pool, self.heads = _heads(self.trunk.out_shape, task_classes)

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        return self.heads[task](self.pool(self.trunk(x)))

    def forward_mixed(self, x: torch.Tensor, t: torch.Tensor) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """A batch mixing tasks (``t``: each row's task): the trunk sees the whole batch once;
        ``(task, rows, logits)`` for each task present."""
        h = self.pool(self.trunk(x))
        return [(k, rows, self.heads[k](h[rows])) for k, rows in task_rows(t)]


class RoutingNet(nn.Module):
    """Shared modules, one topology per task over them (the CTR scheme).

    A shared stem (3x3 convolution to ``channels``, batch norm, ReLU, and 2x2 max pooling on
    inputs of 16 pixels or more) feeds each task's route; a route node applies its module to the sum of
    its predecessors' outputs; the route's output (the sum of its predecessors) goes to the
    task's head (pooled to at most 4x4, flattened, linear). Module ``k`` is one ``nn.Module``
    however many tasks use it, so their parameters are shared."""

    def __init__(self, space, genome: Genome, input_shape: tuple[int, ...], task_classes: list[int]):
        super().__init__()
        routes, modules = space.parts(genome)
        if len(routes) != len(task_classes):
            raise ValueError(f"network has {len(routes)} task routes, the data has {len(task_classes)} tasks")
        c, h, w = (int(v) for v in input_shape)
        pool = [nn.MaxPool2d(2)] if min(h, w) >= 16 else []
        self.stem = nn.Sequential(nn.Conv2d(c, space.channels, 3, 1, 1), nn.BatchNorm2d(space.channels), nn.ReLU(),
                                  *pool)
        with torch.no_grad():
            shape = tuple(self.stem.eval()(torch.zeros(2, c, h, w)).shape[1:])
        self.stem.train()
        self.blocks = nn.ModuleList(GraphNet(from_dict(m), shape, None, keep_shape=True) for m in modules)
        self.pool, self.heads = _heads(shape, task_classes)
        self.routes = []
        for r in routes:
            nodes = r["nodes"]
            preds = {k: sorted(u for u, v in r["edges"] if v == k) for k in range(len(nodes))}
            order = [k for k in range(len(nodes)) if nodes[k]["op"] != "input"]  # nodes are in topological order
            src = next(k for k, n in enumerate(nodes) if n["op"] == "input")
            self.routes.append((src, [(k, nodes[k].get("module"), preds[k]) for k in order]))

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        src, steps = self.routes[task]
        outs = {src: self.stem(x)}
        h = outs[src]
        for k, module, preds in steps:
            h = _summed([outs[p] for p in preds])
            outs[k] = self.blocks[module](h) if module is not None else h
        return self.heads[task](self.pool(h))

    def forward_mixed(self, x: torch.Tensor, t: torch.Tensor) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """A batch mixing tasks (``t``: each row's task), ``(task, rows, logits)`` for each task
        present. The stem sees the whole batch; the routes then advance in waves, and in each
        wave a module that several route nodes are ready to apply runs once on their inputs
        together. Shared layers (batch norm above all) thus train on the task mixture they are
        tested with; in eval mode the result equals ``forward(x[rows], task)`` per task."""
        stem = self.stem(x)
        groups = task_rows(t)
        outs: dict[tuple[int, int], torch.Tensor] = {}
        pending: dict[int, list] = {}
        for k, rows in groups:
            src, steps = self.routes[k]
            outs[(k, src)] = stem[rows]
            pending[k] = list(steps)
        while any(pending.values()):
            calls: dict[int, list[tuple[int, int, torch.Tensor]]] = {}
            for k, steps in pending.items():
                while steps and all((k, p) in outs for p in steps[0][2]):
                    node, module, preds = steps.pop(0)
                    h = _summed([outs[(k, p)] for p in preds])
                    if module is None:
                        outs[(k, node)] = h
                    else:
                        calls.setdefault(module, []).append((k, node, h))
                        break  # its successors wait for the module's output, computed below
            for module, items in calls.items():
                y = self.blocks[module](torch.cat([h for _, _, h in items]))
                for (k, node, _), part in zip(items, torch.split(y, [len(h) for _, _, h in items])):
                    outs[(k, node)] = part
        return [(k, rows, self.heads[k](self.pool(outs[(k, self.routes[k][1][-1][0])]))) for k, rows in groups]


def build_multitask(space_cfg, genome: Genome, input_shape: tuple[int, ...], task_classes: list[int]) -> nn.Module:
    """The multi-task network of ``genome`` for ``space.multitask``."""
    if space_cfg.multitask == "routing":
        from nas.spaces.multitask import RoutingSpace

        space = RoutingSpace(space_cfg.codeepneat, len(task_classes), space_cfg.routing_channels)
        return RoutingNet(space, genome, input_shape, task_classes)
    if space_cfg.multitask == "heads":
        from nas.spaces.codeepneat import CoDeepNEATSpace

        return HeadsNet(CoDeepNEATSpace(space_cfg.codeepneat), genome, input_shape, task_classes)
    raise ValueError("multi-task data needs space.kind 'codeepneat' with space.multitask 'heads' or 'routing'")

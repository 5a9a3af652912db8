"""Torch builder for NAS-Bench-101-style cells: a small stacked-cell network.

Skeleton (as in NAS-Bench-101, scaled down; ``C = channels``)::

    stem: Conv3x3(in -> C) + BN + ReLU
    stack 1: ``cells_per_stack`` cells at C
    MaxPool 2x2 (stride 2), then stack 2 at 2C, ... (``stacks`` stacks, channels doubled each)
    global average pool -> Linear(classes)

Inside a cell every vertex works at the cell's output width. The input is projected once by a
1x1 conv-BN-ReLU when the widths differ (NAS-Bench-101 projects each input edge; one shared
projection keeps the network small). Interior vertex ``j`` applies its op to the sum of its
inputs; the output is the sum of its inputs (NAS-Bench-101 concatenates the interior vertices
that feed the output; a sum keeps every cell at one width). ``space.activation`` replaces
ReLU in the conv ops.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.genome import Genome


def _relu() -> nn.Module:
    return nn.ReLU()


def _conv_bn_act(cin: int, cout: int, k: int, act) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout), act())


def make_op(name: str, channels: int, act=_relu) -> nn.Module:
    if name == "conv3x3-bn-relu":
        return _conv_bn_act(channels, channels, 3, act)
    if name == "conv1x1-bn-relu":
        return _conv_bn_act(channels, channels, 1, act)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NAS-Bench-101 op {name!r}")


class DAGCell(nn.Module):
    def __init__(self, matrix, ops: list[str], cin: int, cout: int, act=_relu):
        super().__init__()
        self.n = len(ops)
        self.inputs = [[i for i in range(j) if matrix[i][j]] for j in range(self.n)]
        self.proj = nn.Identity() if cin == cout else _conv_bn_act(cin, cout, 1, act)
        self.ops = nn.ModuleList([nn.Identity()] + [make_op(o, cout, act) for o in ops[1:-1]] + [nn.Identity()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vals = [self.proj(x)]
        for j in range(1, self.n):
            vals.append(self.ops[j](sum(vals[i] for i in self.inputs[j])))
        return vals[-1]


class DAGCellNetwork(nn.Module):
    def __init__(self, matrix, ops: list[str], in_channels: int, num_classes: int, channels: int = 16,
                 stacks: int = 3, cells_per_stack: int = 1, act=_relu):
        super().__init__()
        self.stem = _conv_bn_act(in_channels, channels, 3, act)
        layers: list[nn.Module] = []
        c = channels
        for s in range(stacks):
            cout = channels * 2 ** s
            if s > 0:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            for _ in range(cells_per_stack):
                layers.append(DAGCell(matrix, ops, c, cout, act))
                c = cout
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.cells(self.stem(x)).mean(dim=(2, 3)))


def build_dag_cell(space, genome: Genome, in_channels: int, num_classes: int) -> DAGCellNetwork:
    """A freshly initialised network whose every cell is ``genome`` of ``space`` (a ``DAGCellSpace``)."""
    matrix, ops = space.matrix(genome)
    act = _relu
    if space.activation != "default":
        from nas.meta.components import resolve
        from nas.meta.network import activation_module

        tree = resolve("activation", space.activation)["tree"]
        act = lambda: activation_module(tree)  # noqa: E731
    return DAGCellNetwork(matrix.tolist(), ops, in_channels, num_classes, space.channels, space.stacks,
                          space.cells_per_stack, act)

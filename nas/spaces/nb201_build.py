"""Torch builder for the NAS-Bench-201 macro skeleton around one searched cell.

Skeleton (as in NAS-Bench-201 / NATS-Bench topology, ``C = channels``, ``N = cells_per_stage``)::

    stem: Conv3x3(in -> C, no bias) + BN
    N cells at C      -> ResNet reduction block C -> 2C (stride 2)
    N cells at 2C     -> ResNet reduction block 2C -> 4C (stride 2)
    N cells at 4C     -> BN + ReLU -> global average pool -> Linear(4C, classes)

With the defaults (C=16, N=5, 10 classes) the all-``nor_conv_3x3`` cell gives 1,531,546
parameters, NAS-Bench-201's 1.531546 MB for that cell on CIFAR-10.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from nas.genome import Genome
from nas.spaces.nb201 import EDGES, N_NODES, OPS, NB201Space


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _relu() -> nn.Module:
    return nn.ReLU(inplace=False)


class ReLUConvBN(nn.Sequential):
    """Activation (ReLU unless ``space.activation`` says otherwise), conv, BatchNorm."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, act=_relu):
        super().__init__(act(), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout))


def make_op(name: str, channels: int, act=_relu) -> nn.Module:
    """One cell edge operation at ``channels`` in and out, stride 1."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    m = re.fullmatch(r"nor_conv_(\d+)x\1", name)
    if m:
        return ReLUConvBN(channels, channels, int(m.group(1)), act=act)
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}")


class Cell(nn.Module):
    """node0 = input; node_j = sum_{i<j} op_{j,i}(node_i); output = the last node."""

    def __init__(self, op_names: list[str], channels: int, act=_relu):
        super().__init__()
        self.edges = nn.ModuleList(make_op(n, channels, act) for n in op_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        g = 0
        for j in range(1, N_NODES):
            nodes.append(sum(self.edges[g + i](nodes[i]) for i in range(j)))
            g += j
        return nodes[-1]


class ResNetReduction(nn.Module):
    """ResNet basic block halving the resolution: ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN,
    shortcut AvgPool2d(2, 2) + Conv1x1 (no bias)."""

    def __init__(self, cin: int, cout: int, act=_relu):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, stride=2, act=act)
        self.conv_b = ReLUConvBN(cout, cout, 3, act=act)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    def __init__(self, op_names: list[str], in_channels: int = 3, num_classes: int = 10,
                 channels: int = 16, cells_per_stage: int = 5, act=_relu):
        super().__init__()
        if len(op_names) != len(EDGES):
            raise ValueError(f"a cell needs {len(EDGES)} ops, got {len(op_names)}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetReduction(c, 2 * c, act))
                c *= 2
            layers += [Cell(op_names, c, act) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), act())
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lastact(self.cells(self.stem(x)))
        return self.classifier(y.mean(dim=(2, 3)))


def build_nb201(genome: Genome, in_channels: int = 3, num_classes: int = 10, channels: int = 16,
                cells_per_stage: int = 5, ops: tuple[str, ...] = OPS, activation: str = "default") -> NB201Network:
    """A freshly initialised NAS-Bench-201 network whose every cell is ``genome``; ``activation``
    is ``space.activation`` (``default``: ReLU)."""
    space = NB201Space(ops)
    op_names = [name for _, _, name in space.decode(genome)]
    act = _relu
    if activation != "default":
        from nas.meta.components import resolve
        from nas.meta.network import activation_module

        tree = resolve("activation", activation)["tree"]
        act = lambda: activation_module(tree)  # noqa: E731
    return NB201Network(op_names, in_channels, num_classes, channels, cells_per_stage, act)

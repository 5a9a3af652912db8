"""Torch builder for assembled CoDeepNEAT networks.

The layer graph of :meth:`CoDeepNEATSpace.layer_graph` becomes a :class:`GraphNet`. Shapes
are inferred once at build time from the input shape, and shape adapters are inserted where
a layer's inputs disagree:

* several inputs are merged by concatenation: feature maps of different sizes are first
  average-pooled to the smallest height and width; when any input is a flat vector, feature
  maps are pooled to at most 4x4 and flattened first;
* a ``conv`` on a vector sees it as a 1x1 feature map; a ``dense`` on a feature map flattens
  it after average-pooling it to at most 4x4 (which bounds the weights);
* pooling halves height and width (2x2, stride 2) and is skipped once they are 1;
* the head pools feature maps to at most 4x4, flattens them, and classifies linearly.

The forward pass walks a fixed node list, so ``torch.fx`` can trace it (AutoInit does).
"""

from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from nas.genome import Genome

ACT = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
       "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "identity": nn.Identity}
DENSE_MAX_SIDE = 4


def activation(name: str) -> nn.Module:
    """A named activation, or an evolved one written as its expression (``space.activation``)."""
    if name in ACT:
        return ACT[name]()
    from nas.meta.expr import TreeError, parse
    from nas.meta.network import activation_module

    try:
        return activation_module(parse(name))
    except TreeError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACT)}, or an expression such as "
                         "'x * sigmoid(x)'") from None


class Merge(nn.Module):
    """Concatenate several inputs after bringing them to a common kind of shape."""

    def __init__(self, adapters: list[nn.Module]):
        super().__init__()
        self.adapters = nn.ModuleList(adapters)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([a(x) for a, x in zip(self.adapters, xs)], dim=1)


class Sum(nn.Module):
    """Add inputs of one shape (shape-preserving modules, e.g. multi-task routing)."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def to_vector(shape: torch.Size) -> nn.Module:
    """Feature map to vector: average-pool to at most 4x4 (bounding the weights that follow),
    then flatten. Keeping some spatial layout matters on small images: global pooling alone
    leaves a shallow network near chance on digits."""
    h, w = min(int(shape[2]), DENSE_MAX_SIDE), min(int(shape[3]), DENSE_MAX_SIDE)
    pool = [nn.AdaptiveAvgPool2d((h, w))] if (h, w) != (int(shape[2]), int(shape[3])) else []
    return nn.Sequential(*pool, nn.Flatten())


def _merge(shapes: list[torch.Size]) -> Merge:
    if any(len(s) == 2 for s in shapes):
        return Merge([to_vector(s) if len(s) == 4 else nn.Identity() for s in shapes])
    h = min(s[2] for s in shapes)
    w = min(s[3] for s in shapes)
    return Merge([nn.AdaptiveAvgPool2d((h, w)) if (s[2], s[3]) != (h, w) else nn.Identity() for s in shapes])


def make_layer(attrs: dict, shape: torch.Size, keep_shape: bool = False) -> nn.Module:
    """The torch layer for one node, given the shape ``(N, C[, H, W])`` of its (merged) input.
    ``keep_shape``: pooling is 3x3 with stride 1 (shape-preserving modules)."""
    op = attrs["op"]
    flat = len(shape) == 2
    if op in ("merge", "input", "output"):
        return nn.Identity()
    if op == "conv":
        k = int(attrs["kernel"])
        conv = nn.Conv2d(int(shape[1]), int(attrs["channels"]), k, padding=k // 2)
        pre = [nn.Unflatten(1, (int(shape[1]), 1, 1))] if flat else []
        return nn.Sequential(*pre, conv, activation(attrs["act"]))
    if op == "dense":
        pre = [] if flat else [to_vector(shape)]
        features = int(shape[1]) if flat else int(shape[1]) * min(int(shape[2]), DENSE_MAX_SIDE) * min(int(shape[3]), DENSE_MAX_SIDE)
        return nn.Sequential(*pre, nn.Linear(features, int(attrs["units"])), activation(attrs["act"]))
    if op in ("maxpool", "avgpool"):
        if flat or min(int(shape[2]), int(shape[3])) < 2:
            return nn.Identity()
        if keep_shape:
            return nn.MaxPool2d(3, 1, 1) if op == "maxpool" else nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        return nn.MaxPool2d(2) if op == "maxpool" else nn.AvgPool2d(2)
    if op == "dropout":
        return nn.Dropout(float(attrs["rate"]))
    if op == "batchnorm":
        return nn.BatchNorm1d(int(shape[1])) if flat else nn.BatchNorm2d(int(shape[1]))
    if op == "activation":
        return activation(attrs["act"])
    raise ValueError(f"unknown layer type {op!r}")


class GraphNet(nn.Module):
    """A network computed node by node in a fixed topological order."""

    def __init__(self, graph: nx.DiGraph, input_shape: tuple[int, ...], num_classes: int | None,
                 keep_shape: bool = False):
        """``num_classes=None`` leaves out the head (the output node's tensor is returned, its
        shape in ``out_shape``); ``keep_shape`` (shape-preserving modules) adds several inputs
        instead of concatenating them and pools 3x3 with stride 1."""
        super().__init__()
        order = list(nx.lexicographical_topological_sort(graph))
        self.order = order
        self.preds = [sorted(graph.predecessors(n)) for n in order]
        self.input_node = next(n for n in order if graph.nodes[n]["attrs"]["op"] == "input")
        self.output_node = next(n for n in order if graph.nodes[n]["attrs"]["op"] == "output")
        self.ops = {n: graph.nodes[n]["attrs"]["op"] for n in order}
        self.merges = nn.ModuleDict()
        self.layers = nn.ModuleDict()
        with torch.no_grad():
            outs: dict[int, torch.Tensor] = {}
            for n, preds in zip(order, self.preds):
                if n == self.input_node:
                    outs[n] = torch.zeros(2, *input_shape)
                    continue
                xs = [outs[p] for p in preds]
                if len(xs) > 1:
                    self.merges[str(n)] = Sum() if keep_shape else _merge([x.shape for x in xs])
                    x = self.merges[str(n)](xs)
                else:
                    x = xs[0]
                self.layers[str(n)] = make_layer(graph.nodes[n]["attrs"], x.shape, keep_shape)
                self.layers[str(n)].eval()
                outs[n] = self.layers[str(n)](x)
            out = outs[self.output_node]
        self.out_shape = tuple(out.shape[1:])
        self.pool = to_vector(out.shape) if out.dim() == 4 else nn.Identity()
        self.head = nn.Linear(int(self.pool(out).shape[1]), num_classes) if num_classes else nn.Identity()
        if not num_classes:
            self.pool = nn.Identity()
        self.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = {self.input_node: x}
        for n, preds in zip(self.order, self.preds):
            if n == self.input_node:
                continue
            if len(preds) > 1:
                h = self.merges[str(n)]([outs[p] for p in preds])
            else:
                h = outs[preds[0]]
            outs[n] = self.layers[str(n)](h)
        return self.head(self.pool(outs[self.output_node]))


def build_codeepneat(space, genome: Genome, in_channels: int, num_classes: int,
                     input_shape: tuple[int, ...] | None = None) -> GraphNet:
    """A freshly initialised network for an assembled CoDeepNEAT ``genome``."""
    shape = tuple(input_shape) if input_shape is not None else (in_channels, 8, 8)
    return GraphNet(space.layer_graph(genome), shape, num_classes)

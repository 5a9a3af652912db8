"""Torch builder for recurrent cells: a sequence classifier that reads an image row by row.

An input of shape (channels, height, width) is a sequence of ``height`` steps of
``channels * width`` features; a linear embedding maps each step to ``hidden_size`` (the
cell's ``x``, as NAS-Bench-NLP feeds the cell word embeddings of the hidden size). The cell runs
over the steps from zero states; a linear classifier reads the last ``h_new_0``.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.genome import Genome


class RecurrentCell(nn.Module):
    def __init__(self, nodes: list[tuple[str, tuple[int, ...]]], outputs: tuple[int, ...], n_in: int, size: int):
        super().__init__()
        self.nodes, self.outputs, self.n_in = nodes, outputs, n_in
        # one weight matrix per linear input (a bias per linear node), as NAS-Bench-NLP's linear ops
        self.linears = nn.ModuleDict({
            str(k): nn.ModuleList(nn.Linear(size, size, bias=(p == 0)) for p in range(len(rd)))
            for k, (op, rd) in enumerate(nodes) if op == "linear"})

    def forward(self, x: torch.Tensor, states: list[torch.Tensor]) -> list[torch.Tensor]:
        vals = [x, *states]
        for k, (op, rd) in enumerate(self.nodes):
            a = [vals[r] for r in rd]
            if op == "linear":
                v = sum(lin(t) for lin, t in zip(self.linears[str(k)], a))
            elif op == "blend":
                v = a[0] * a[1] + (1 - a[0]) * a[2]
            elif op == "elementwise_prod":
                v = a[0] * a[1]
            elif op == "elementwise_sum":
                v = a[0] + a[1]
            elif op == "activation_tanh":
                v = torch.tanh(a[0])
            elif op == "activation_sigm":
                v = torch.sigmoid(a[0])
            else:
                v = nn.functional.leaky_relu(a[0])
            vals.append(v)
        return [vals[self.n_in + o] for o in self.outputs]


class RecurrentClassifier(nn.Module):
    def __init__(self, space, genome: Genome, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        c, h, w = (tuple(input_shape) + (1, 1))[:3]
        self.steps, self.hidden, self.size = h, space.hidden, space.hidden_size
        self.embed = nn.Linear(c * w, self.size)
        self.cell = RecurrentCell(space.nodes(genome), space.outputs(genome), space.n_in, self.size)
        self.classifier = nn.Linear(self.size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        seq = self.embed(x.permute(0, 2, 1, 3).reshape(n, self.steps, -1))  # (batch, rows, features)
        states = [seq.new_zeros(n, self.size) for _ in range(self.hidden)]
        for t in range(self.steps):
            states = self.cell(seq[:, t], states)
        return self.classifier(states[0])


def build_rnn_cell(space, genome: Genome, input_shape: tuple[int, ...], num_classes: int) -> RecurrentClassifier:
    """A freshly initialised row-by-row classifier around ``genome`` of ``space`` (an ``RNNCellSpace``)."""
    return RecurrentClassifier(space, genome, input_shape, num_classes)

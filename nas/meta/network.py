"""The fixed network a meta-learning candidate is trained with, and that training.

conv3x3-BN-activation blocks (``channels``, stride 1 then 2), global average pooling, a linear
classifier; AutoInit sets the weights from the activation's own moments, so an activation's
scale does not decide its score (as in PANGAEA's AutoInit experiments)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from nas.meta.expr import EvolvedActivation, Tree

_NATIVE = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softplus": nn.Softplus}


def activation_module(tree: Tree | None, default: Callable[[], nn.Module] = nn.ReLU) -> nn.Module:
    """A torch module for ``tree`` (``default()`` for None); ``u(x)`` with a native torch module
    uses it (faster, same function), anything else an :class:`EvolvedActivation`."""
    if tree is None:
        return default()
    if tree["op"] in _NATIVE and tree.get("args") == [{"op": "x"}] and "scale" not in tree:
        return _NATIVE[tree["op"]]()
    return EvolvedActivation(tree)


def fixed_network(input_shape: tuple[int, ...], num_classes: int, channels: list[int],
                  activation: Tree | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = input_shape[0]
    for i, c in enumerate(channels):
        layers += [nn.Conv2d(cin, c, 3, 1 if i == 0 else 2, 1, bias=False), nn.BatchNorm2d(c),
                   activation_module(activation)]
        cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def train_fixed(component: str, value: dict | None, data, seed: int, settings, base_activation: Tree | None,
                device: torch.device | str = "cpu") -> nn.Module:
    """The fixed network trained with one component (``value`` None: the baseline, i.e. the
    base activation, cross-entropy, no augmentation), seeded by ``seed`` (weights, AutoInit's
    probe, batch order, augmentation draws). ``settings``: ``evaluation.meta``."""
    from nas.autoinit import init_model
    from nas.meta.components import Recipe
    from nas.training import train

    act = value["tree"] if component == "activation" and value is not None else base_activation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = fixed_network(data.input_shape, data.num_classes, list(settings.channels), act)
        init_model(net, "autoinit", data.input_shape, rng_seed=seed)
    recipe = Recipe(loss=value if component == "loss" else None, augment=value if component == "augmentation" else None)
    train(net, data.x_train, data.y_train, settings.epochs, settings.lr, settings.batch_size,
          np.random.default_rng(seed), device, recipe=recipe)
    return net

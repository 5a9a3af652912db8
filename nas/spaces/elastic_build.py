"""Torch builders for the elastic CNN space: the weight-sharing supernet and stand-alone subnets.

The supernet holds the largest of everything: for each stage ``max(depths)`` MBConv blocks
with the widest channels, the largest expand ratio and kernel size. A subnet uses the first
``depth`` blocks of a stage, its stage's first ``C`` channels (elastic width, as BigNAS slices
them), the first ``expand * C_in`` hidden channels, and the centre ``k x k`` crop of each
depthwise kernel. ``extract_subnet`` copies those slices into a plain static network that
can be fine-tuned, measured and exported on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas.genome import Genome
from nas.spaces.elastic import BlockSpec, ElasticSpace

if TYPE_CHECKING:
    from nas.costs import Layer


def make_act(space_cfg) -> "Callable[[], nn.Module]":
    """A factory of the configured activation (``space.activation``; ReLU6 by default)."""
    spec = getattr(space_cfg, "activation", "default")
    if spec == "default":
        return nn.ReLU6
    from nas.meta.components import resolve
    from nas.meta.network import activation_module

    tree = resolve("activation", spec)["tree"]
    return lambda: activation_module(tree)


def _crop(weight: torch.Tensor, k: int) -> torch.Tensor:
    kmax = weight.shape[-1]
    if k == kmax:
        return weight
    s = (kmax - k) // 2
    return weight[..., s:s + k, s:s + k]


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, c: int) -> torch.Tensor:
    """BatchNorm over the first ``c`` channels of ``bn``; uses batch statistics in training."""
    rm = bn.running_mean[:c] if bn.running_mean is not None else None
    rv = bn.running_var[:c] if bn.running_var is not None else None
    return F.batch_norm(x, rm, rv, bn.weight[:c], bn.bias[:c], bn.training, bn.momentum or 0.1, bn.eps)


class DynamicMBConv(nn.Module):
    """Inverted residual block whose input and output channels, hidden width and depthwise kernel are
    chosen per call (the input's channels are the input's own)."""

    def __init__(self, cin: int, cout: int, stride: int, kmax: int, emax: int, act: Callable[[], nn.Module] = nn.ReLU6):
        super().__init__()
        hidden = cin * emax
        self.act1, self.act2 = act(), act()
        self.cout, self.stride, self.kmax = cout, stride, kmax
        self.expand = nn.Conv2d(cin, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, kmax, stride, kmax // 2, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, k: int, e: int, cout: int | None = None) -> torch.Tensor:
        cin = x.shape[1]
        cout = self.cout if cout is None else cout
        h = cin * e
        y = F.conv2d(x, self.expand.weight[:h, :cin])
        y = self.act1(_bn(y, self.bn1, h))
        y = F.conv2d(y, _crop(self.depthwise.weight[:h], k), stride=self.stride, padding=k // 2, groups=h)
        y = self.act2(_bn(y, self.bn2, h))
        y = F.conv2d(y, self.project.weight[:cout, :h])
        y = _bn(y, self.bn3, cout)
        return x + y if (self.stride == 1 and cin == cout) else y


class Supernet(nn.Module):
    def __init__(self, space: ElasticSpace, in_channels: int, num_classes: int):
        super().__init__()
        cfg = space.cfg
        self.space = space
        act = make_act(cfg)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, cfg.stem_channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cfg.stem_channels), act())
        self.stages = nn.ModuleList()
        cin = cfg.stem_channels
        for cout, stride in zip(space.max_channels, cfg.stage_strides):
            blocks = nn.ModuleList()
            for b in range(space.max_depth):
                blocks.append(DynamicMBConv(cin, cout, stride if b == 0 else 1, max(cfg.kernel_sizes),
                                            max(cfg.expand_ratios), act))
                cin = cout
            self.stages.append(blocks)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor, genome: Genome) -> torch.Tensor:
        y = self.stem(x)
        for spec in self.space.decode(genome):
            y = self.stages[spec.stage][spec.index](y, spec.kernel_size, spec.expand_ratio, spec.out_channels)
        c = y.shape[1]
        return F.linear(F.adaptive_avg_pool2d(y, 1).flatten(1), self.classifier.weight[:, :c], self.classifier.bias)


class MBConv(nn.Module):
    """Static inverted residual block of a stand-alone subnet."""

    def __init__(self, spec: BlockSpec, act: Callable[[], nn.Module] = nn.ReLU6):
        super().__init__()
        h = spec.in_channels * spec.expand_ratio
        k = spec.kernel_size
        self.residual = spec.stride == 1 and spec.in_channels == spec.out_channels
        self.body = nn.Sequential(
            nn.Conv2d(spec.in_channels, h, 1, bias=False), nn.BatchNorm2d(h), act(),
            nn.Conv2d(h, h, k, spec.stride, k // 2, groups=h, bias=False), nn.BatchNorm2d(h), act(),
            nn.Conv2d(h, spec.out_channels, 1, bias=False), nn.BatchNorm2d(spec.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class SubNet(nn.Module):
    def __init__(self, space: ElasticSpace, genome: Genome, in_channels: int, num_classes: int):
        super().__init__()
        cfg = space.cfg
        act = make_act(cfg)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, cfg.stem_channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cfg.stem_channels), act())
        self.specs = space.decode(genome)
        self.blocks = nn.Sequential(*[MBConv(s, act) for s in self.specs])
        self.classifier = nn.Linear(self.specs[-1].out_channels if self.specs else cfg.stem_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x))
        return self.classifier(y.mean(dim=(2, 3)))


def build_subnet(space: ElasticSpace, genome: Genome, in_channels: int, num_classes: int) -> SubNet:
    """A freshly initialised stand-alone network for ``genome``."""
    return SubNet(space, genome, in_channels, num_classes)


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, c: int) -> None:
    dst.weight.copy_(src.weight[:c])
    dst.bias.copy_(src.bias[:c])
    dst.running_mean.copy_(src.running_mean[:c])
    dst.running_var.copy_(src.running_var[:c])


@torch.no_grad()
def extract_subnet(supernet: Supernet, genome: Genome) -> SubNet:
    """A stand-alone network for ``genome`` carrying the supernet's shared weights."""
    in_ch = supernet.stem[0].in_channels
    net = SubNet(supernet.space, genome, in_ch, supernet.classifier.out_features)
    net.stem.load_state_dict(supernet.stem.state_dict())
    for spec, blk in zip(net.specs, net.blocks):
        src: DynamicMBConv = supernet.stages[spec.stage][spec.index]
        h = spec.in_channels * spec.expand_ratio
        conv1, bn1, act1, dw, bn2, act2, conv3, bn3 = blk.body
        act1.load_state_dict(src.act1.state_dict())  # learnable activation scales (space.activation)
        act2.load_state_dict(src.act2.state_dict())
        conv1.weight.copy_(src.expand.weight[:h, :spec.in_channels])
        _copy_bn(bn1, src.bn1, h)
        dw.weight.copy_(_crop(src.depthwise.weight[:h], spec.kernel_size))
        _copy_bn(bn2, src.bn2, h)
        conv3.weight.copy_(src.project.weight[:spec.out_channels, :h])
        _copy_bn(bn3, src.bn3, spec.out_channels)
    c = net.classifier.in_features
    net.classifier.weight.copy_(supernet.classifier.weight[:, :c])
    net.classifier.bias.copy_(supernet.classifier.bias)
    return net


# ---------------------------------------------------------------------------- per-layer costs


class Head(nn.Module):
    """Global average pooling and the classifier: the last layer of a subnet, on its own."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.mean(dim=(2, 3)))


def _stem(space: ElasticSpace, in_channels: int) -> nn.Module:
    c = space.cfg.stem_channels
    return nn.Sequential(nn.Conv2d(in_channels, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), make_act(space.cfg)())


def _out_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # a k x k convolution with padding k // 2, k odd


def _block_key(spec: BlockSpec, size: int) -> str:
    return f"mbconv{spec.in_channels}-{spec.out_channels}/s{spec.stride}/k{spec.kernel_size}/e{spec.expand_ratio}@{size}"


def subnet_layers(space: ElasticSpace, genome: Genome, input_shape: tuple[int, int, int],
                  num_classes: int) -> list["Layer"]:
    """The layers of ``genome``'s subnet in order (stem, blocks, head), with their inputs' shapes:
    the pieces whose costs add up to the subnet's (see :mod:`nas.costs`)."""
    from nas.costs import Layer

    c, size, _ = input_shape
    out = [Layer(f"stem{c}-{space.cfg.stem_channels}@{size}", lambda: _stem(space, c), (c, size, size))]
    ch = space.cfg.stem_channels
    for spec in space.decode(genome):
        out.append(Layer(_block_key(spec, size), lambda spec=spec: MBConv(spec, make_act(space.cfg)), (ch, size, size)))
        size, ch = _out_size(size, spec.stride), spec.out_channels
    out.append(Layer(f"head{ch}-{num_classes}@{size}", lambda ch=ch: Head(ch, num_classes), (ch, size, size)))
    return out


def all_layers(space: ElasticSpace, input_shape: tuple[int, int, int], num_classes: int) -> list["Layer"]:
    """Every distinct layer any subnet of ``space`` can contain (what a cost table measures)."""
    import itertools

    cfg = space.cfg
    widths = list(itertools.product(range(len(cfg.width_multipliers)), repeat=space.n_width))
    choices = itertools.product(range(len(cfg.kernel_sizes)), range(len(cfg.expand_ratios)), widths)
    layers: dict[str, "Layer"] = {}
    # a block's shape depends on its stage, whether it is the stage's first, its kernel and expand ratio, and
    # the widths of its stage and the one before; genomes at full depth with every block set alike, at every
    # combination of stage widths, cover every combination
    for ki, ei, w in choices:
        values = [len(cfg.depths) - 1] * space.n_stages + [ki, ei] * (space.n_stages * space.max_depth) + list(w)
        for layer in subnet_layers(space, space.canonical(values), input_shape, num_classes):
            layers.setdefault(layer.key, layer)
    return list(layers.values())

"""Elastic CNN search space in the Once-for-All / MSuNAS style, scaled to small images.

A network is a stem, ``S`` stages of inverted-residual (MBConv) blocks and a classifier.
Each stage has an elastic depth and, when ``space.width_multipliers`` offers more than one
choice, an elastic width (its channels); each block an elastic kernel size and expand ratio.
The genome is a fixed-length integer vector of choice indices::

    [depth_0 .. depth_{S-1}, k_{0,0}, e_{0,0}, k_{0,1}, e_{0,1}, ..., k_{S-1,D-1}, e_{S-1,D-1}, w_0 .. w_{S-1}]

where ``D`` is the largest depth; the width genes exist only with several width choices. Genes
of blocks beyond a stage's depth are inactive; the canonical form sets them to 0 so that one
architecture has exactly one genome.
This module never builds torch modules (see ``nas.spaces.elastic_build``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.config import SpaceConfig
from nas.genome import Genome
from nas.spaces.base import IntegerVectorSpace


@dataclass(frozen=True)
class BlockSpec:
    stage: int
    index: int
    in_channels: int
    out_channels: int
    stride: int
    kernel_size: int
    expand_ratio: int


class ElasticSpace(IntegerVectorSpace):
    name = "elastic_cnn"

    def __init__(self, cfg: SpaceConfig):
        self.cfg = cfg
        self.n_stages = len(cfg.stage_channels)
        self.max_depth = max(cfg.depths)
        self.n_width = self.n_stages if len(cfg.width_multipliers) > 1 else 0

    def stage_widths(self, width_index: int) -> list[int]:
        """Every stage's channels at the ``width_index``-th width multiplier."""
        m = self.cfg.width_multipliers[width_index]
        return [max(1, int(round(m * c))) for c in self.cfg.stage_channels]

    @property
    def max_channels(self) -> list[int]:
        """Each stage's channels in the supernet (the widest choice)."""
        return self.stage_widths(len(self.cfg.width_multipliers) - 1)

    # --- encoding -----------------------------------------------------------------
    @property
    def n_var(self) -> int:
        return self.n_stages + 2 * self.n_stages * self.max_depth + self.n_width

    @property
    def _width_start(self) -> int:
        return self.n_stages + 2 * self.n_stages * self.max_depth

    @property
    def upper_bounds(self) -> np.ndarray:
        """Inclusive upper bound of every gene (lower bounds are all 0)."""
        ub = [len(self.cfg.depths) - 1] * self.n_stages
        ub += [len(self.cfg.kernel_sizes) - 1, len(self.cfg.expand_ratios) - 1] * (self.n_stages * self.max_depth)
        ub += [len(self.cfg.width_multipliers) - 1] * self.n_width
        return np.array(ub, dtype=np.int64)

    def _block_gene(self, stage: int, block: int) -> int:
        return self.n_stages + 2 * (stage * self.max_depth + block)

    def canonical(self, values) -> Genome:
        v = self.clip(values)
        for s in range(self.n_stages):
            depth = self.cfg.depths[v[s]]
            for b in range(depth, self.max_depth):
                g = self._block_gene(s, b)
                v[g] = v[g + 1] = 0
        return Genome(tuple(int(x) for x in v), self.name)

    def encode(self, genome: Genome) -> np.ndarray:
        """Numeric features for surrogates: the choice values themselves (with elastic width, each
        stage's channels), 0 for inactive blocks."""
        arch = self.decode(genome)
        feats = [float(self.cfg.depths[genome.values[s]]) for s in range(self.n_stages)]
        if self.n_width:
            feats += [float(c) for c in self.channels(genome)]
        by_pos = {(b.stage, b.index): b for b in arch}
        for s in range(self.n_stages):
            for b in range(self.max_depth):
                blk = by_pos.get((s, b))
                feats += [float(blk.kernel_size), float(blk.expand_ratio)] if blk else [0.0, 0.0]
        return np.array(feats)

    # --- decoding to a pure description ------------------------------------------
    def channels(self, genome: Genome) -> list[int]:
        """Each stage's output channels in ``genome``."""
        if not self.n_width:
            return self.max_channels
        v = genome.values
        return [self.stage_widths(v[self._width_start + s])[s] for s in range(self.n_stages)]

    def decode(self, genome: Genome) -> list[BlockSpec]:
        self.validate(genome)
        v = genome.values
        blocks = []
        cin = self.cfg.stem_channels
        for s, (cout, stride) in enumerate(zip(self.channels(genome), self.cfg.stage_strides)):
            for b in range(self.cfg.depths[v[s]]):
                g = self._block_gene(s, b)
                blocks.append(BlockSpec(s, b, cin, cout, stride if b == 0 else 1,
                                        self.cfg.kernel_sizes[v[g]], self.cfg.expand_ratios[v[g + 1]]))
                cin = cout
        return blocks

    def describe(self, genome: Genome) -> str:
        stages = []
        widths, blocks = self.channels(genome), self.decode(genome)
        for s in range(self.n_stages):
            blks = [f"k{b.kernel_size}e{b.expand_ratio}" for b in blocks if b.stage == s]
            stages.append((f"c{widths[s]}:" if self.n_width else "") + "-".join(blks))
        return " | ".join(stages)

    # --- special members ------------------------------------------------------------
    def largest(self) -> Genome:
        return self.canonical(self.upper_bounds)

    def smallest(self) -> Genome:
        return self.canonical(np.zeros(self.n_var))

    # --- progressive shrinking (Once-for-All): a sub-space elastic in some dimensions only ---
    DIMENSIONS = ("kernel", "depth", "expand", "width")
    """The elastic dimensions, in the order Once-for-All's progressive shrinking releases them
    (width last; without width choices it has no genes)."""

    def _frozen_mask(self, elastic: tuple[str, ...]) -> np.ndarray:
        """True for the genes held at their largest choice when only ``elastic`` dimensions vary."""
        unknown = set(elastic) - set(self.DIMENSIONS)
        if unknown:
            raise ValueError(f"unknown elastic dimension(s) {sorted(unknown)}; expected some of {self.DIMENSIONS}")
        frozen = np.zeros(self.n_var, dtype=bool)
        w0 = self._width_start
        frozen[:self.n_stages] = "depth" not in elastic
        frozen[self.n_stages:w0:2] = "kernel" not in elastic
        frozen[self.n_stages + 1:w0:2] = "expand" not in elastic
        frozen[w0:] = "width" not in elastic
        return frozen

    def sample_elastic(self, rng: np.random.Generator, elastic: tuple[str, ...]) -> Genome:
        """A uniform subnet of the sub-space where only the ``elastic`` dimensions vary (the others
        at their largest choice). With every dimension this draws exactly as :meth:`sample`."""
        frozen = self._frozen_mask(elastic)
        v = rng.integers(0, self.upper_bounds + 1)
        v[frozen] = self.upper_bounds[frozen]
        return self.canonical(v)

    def smallest_elastic(self, elastic: tuple[str, ...]) -> Genome:
        """The smallest subnet of that sub-space."""
        return self.canonical(np.where(self._frozen_mask(elastic), self.upper_bounds, 0))

    # --- variation (all randomness from the caller's generator) -------------------
    def sample(self, rng: np.random.Generator) -> Genome:
        return self.canonical(rng.integers(0, self.upper_bounds + 1))

    def mutate(self, genome: Genome, rng: np.random.Generator, rate: float | None = None) -> Genome:
        rate = rate if rate is not None else 1.0 / self.n_var
        v = np.array(genome.values)
        for _ in range(100):
            mask = rng.random(self.n_var) < rate
            if not mask.any():
                mask[rng.integers(self.n_var)] = True
            child = v.copy()
            child[mask] = rng.integers(0, self.upper_bounds[mask] + 1)
            g = self.canonical(child)
            if g != genome:
                return g
        return self.sample(rng)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        mask = rng.random(self.n_var) < 0.5
        return self.canonical(np.where(mask, np.array(a.values), np.array(b.values)))

    def build(self, genome: Genome, input_shape: tuple[int, ...], num_classes: int):
        """A freshly initialised stand-alone torch network of the subnet."""
        from nas.spaces.elastic_build import build_subnet

        return build_subnet(self, genome, input_shape[0], num_classes)

    def distance(self, a: Genome, b: Genome) -> float:
        return float(np.abs(self.encode(a) - self.encode(b)).sum())

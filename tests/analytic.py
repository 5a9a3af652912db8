"""A deterministic evaluator for strategy and runner tests: real parameter counts from the
built network, and an accuracy that is a fixed smooth function of the architecture (more
capacity helps with diminishing returns, 5x5 kernels are best), so a search has a known
trade-off to find in milliseconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.config import SpaceConfig
from nas.genome import Genome
from nas.objectives import count_params
from nas.spaces.elastic import ElasticSpace
from nas.spaces.elastic_build import build_subnet


@dataclass(frozen=True)
class AnalyticEvaluator:
    base_seed: int = 0
    fail_keys: tuple[str, ...] = ()

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        if genome.key() in self.fail_keys:
            raise RuntimeError("injected failure")
        space = ElasticSpace(SpaceConfig())
        blocks = space.decode(genome)
        params = count_params(build_subnet(space, genome, 1, 10))
        capacity = sum(b.expand_ratio * (1.0 - abs(b.kernel_size - 5) / 4) for b in blocks)
        acc = 0.99 - 0.4 * np.exp(-capacity / 12.0)
        return {"val_accuracy": float(acc), "params": float(params), "flops": float(params * 40),
                "latency_ms": float(0.1 * len(blocks) + params / 1e5)}


@dataclass(frozen=True)
class AnalyticGraphEvaluator:
    """The same idea for assembled CoDeepNEAT networks: real parameter counts of the built
    network; accuracy grows with convolutional capacity (channels x kernel area, with
    diminishing returns) and a little with depth, so growth pays up to a point."""

    base_seed: int = 0
    fail_keys: tuple[str, ...] = ()

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        from nas.spaces.codeepneat import CoDeepNEATSpace
        from nas.spaces.codeepneat_build import build_codeepneat

        if genome.key() in self.fail_keys:
            raise RuntimeError("injected failure")
        space = CoDeepNEATSpace()
        g = space.layer_graph(genome)
        layers = [a for _, a in g.nodes(data="attrs") if a["op"] in ("conv", "dense")]
        capacity = sum(a["channels"] * a["kernel"] ** 2 / 64 for a in layers if a["op"] == "conv")
        acc = 0.99 - 0.5 * np.exp(-capacity / 10.0) - 0.02 * max(0, 3 - len(layers))
        params = count_params(build_codeepneat(space, genome, 1, 10, (1, 8, 8)))
        return {"val_accuracy": float(acc), "params": float(params), "flops": float(params * 40),
                "latency_ms": float(0.05 * g.number_of_nodes() + params / 1e5)}


@dataclass(frozen=True)
class AnalyticWannEvaluator:
    """The same idea for weight-agnostic networks: performance grows with the outputs reached and
    the hidden nodes (diminishing returns), so growing topologies pays up to a point."""

    base_seed: int = 0
    fail_keys: tuple[str, ...] = ()

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        import json

        if genome.key() in self.fail_keys:
            raise RuntimeError("injected failure")
        spec = json.loads(genome.spec)
        reached = len({d for _, d in spec["conns"] if d > spec["inputs"]})
        mean = 1.0 - np.exp(-(len(spec["conns"]) + 3 * len(spec["hidden"])) / 15.0) - 0.05 * (spec["outputs"] - min(
            reached, spec["outputs"]))
        return {"mean_score": float(mean), "max_score": float(mean + 0.1 * np.tanh(len(spec["hidden"]))),
                "connections": float(len(spec["conns"]))}


@dataclass(frozen=True)
class AnalyticMetaEvaluator:
    """Meta-learning genomes (activation trees, loss coefficients, augmentation policies) scored
    by a smooth function of the genome: loss coefficients by closeness to a target vector, trees
    and policies by their size, so every meta strategy has something to climb."""

    base_seed: int = 0
    fail_keys: tuple[str, ...] = ()

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        import json

        if genome.key() in self.fail_keys:
            raise RuntimeError("injected failure")
        v = json.loads(genome.spec)
        if "theta" in v:
            score = float(np.exp(-np.sum((np.array(v["theta"]) - 1.0) ** 2) / 20))
        else:
            score = 1.0 - 1.0 / (1.0 + len(json.dumps(v)) / 100)
        return {"val_accuracy": score}

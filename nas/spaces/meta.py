"""Meta-learning search spaces: activation functions (expression trees), losses (TaylorGLO
coefficients) and augmentation policies. A genome's payload is the component's value
(``{"tree": ...}``, ``{"theta": [...]}``, ``{"policy": [...]}``), the same JSON a search writes
for every training to use (:mod:`nas.meta.components`). ``build`` gives the fixed network the
component is scored with (:mod:`nas.meta.network`)."""

from __future__ import annotations

import numpy as np

from nas.genome import Genome
from nas.meta import augment as aug
from nas.meta import expr
from nas.meta.taylor import N_THETA, check_theta, cross_entropy_theta


class _MetaSpace:
    component = ""

    def __init__(self, cfg, channels: list[int] | tuple[int, ...] = (16, 32, 64), base_activation: dict | None = None):
        self.cfg = cfg  # space.meta
        self.channels = list(channels)
        self.base_activation = base_activation
        self.name = self.component

    def genome(self, value: dict) -> Genome:
        return Genome.from_payload(value, self.name)

    def validate(self, genome: Genome) -> None:
        if genome.space != self.name or not genome.spec:
            raise ValueError(f"genome of space {genome.space!r} is not a {self.name} genome")
        self._check(genome.payload())  # ComponentError is a ValueError

    def _check(self, value: dict) -> None:
        from nas.meta.components import check_value

        if set(value) != {self.key}:
            raise ValueError(f"a {self.name} genome is {{{self.key!r}: ...}}, got keys {sorted(value)}")
        check_value(self.component, value)

    def describe(self, genome: Genome) -> str:
        from nas.meta.components import describe

        return describe(self.component, genome.payload())

    def build(self, genome: Genome, input_shape: tuple[int, ...], num_classes: int):
        from nas.meta.network import fixed_network

        act = genome.payload()["tree"] if self.component == "activation" else self.base_activation
        return fixed_network(tuple(input_shape), num_classes, self.channels, act)


class ActivationSpace(_MetaSpace):
    """Expression trees over ``space.meta.unary`` / ``binary`` (PANGAEA); only trees that pass
    :func:`nas.meta.expr.degenerate` are ever proposed."""

    component, key = "activation", "tree"

    def _usable(self, tree: dict) -> bool:
        return expr.depth(tree) <= self.cfg.max_depth and expr.size(tree) <= self.cfg.max_size \
            and expr.degenerate(tree) is None

    def sample(self, rng: np.random.Generator) -> Genome:
        for _ in range(100):
            t = expr.random_tree(rng, list(self.cfg.unary), list(self.cfg.binary), self.cfg.max_depth)
            if self._usable(t):
                return self.genome({"tree": t})
        return self.largest()

    def mutate(self, genome: Genome, rng: np.random.Generator, rate: float | None = None) -> Genome:
        tree = genome.payload()["tree"]
        for _ in range(20):
            child = expr.mutate(tree, rng, list(self.cfg.unary), list(self.cfg.binary), self.cfg.max_depth,
                                self.cfg.max_size, self.cfg.param_prob)
            if child != tree and self._usable(child):
                return self.genome({"tree": child})
        return self.sample(rng)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        """A random subtree of ``a`` replaced by a random subtree of ``b`` (genetic programming's crossover)."""
        ta, tb = a.payload()["tree"], b.payload()["tree"]
        for _ in range(20):
            path, _ = expr.nodes(ta)[int(rng.integers(expr.size(ta)))]
            _, sub = expr.nodes(tb)[int(rng.integers(expr.size(tb)))]
            child = expr.replace(ta, path, sub)
            if child.get("op") != "x" and self._usable(child):
                return self.genome({"tree": child})
        return a

    def largest(self) -> Genome:
        return self.genome({"tree": expr.parse(expr.BUILTIN["swish"])})

    def distance(self, a: Genome, b: Genome) -> float:
        return float(len(expr.node_set(a.payload()["tree"]) ^ expr.node_set(b.payload()["tree"])))


class LossSpace(_MetaSpace):
    """TaylorGLO's eight coefficients (continuous; CMA-ES searches them)."""

    component, key = "loss", "theta"

    def x0(self) -> np.ndarray:
        return np.array(cross_entropy_theta() if self.cfg.loss_init == "cross_entropy" else [0.0] * N_THETA)

    def from_vector(self, x) -> Genome:
        return self.genome({"theta": [float(v) for v in np.asarray(x, dtype=float)]})

    def vector(self, genome: Genome) -> np.ndarray:
        return np.array(check_theta(genome.payload()["theta"]))

    def sample(self, rng: np.random.Generator) -> Genome:
        return self.from_vector(self.x0() + rng.normal(0.0, self.cfg.loss_sigma, N_THETA))

    def mutate(self, genome: Genome, rng: np.random.Generator, rate: float | None = None) -> Genome:
        return self.from_vector(self.vector(genome) + rng.normal(0.0, self.cfg.loss_sigma / 2, N_THETA))

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        mask = rng.random(N_THETA) < 0.5
        return self.from_vector(np.where(mask, self.vector(a), self.vector(b)))

    def largest(self) -> Genome:
        return self.from_vector(cross_entropy_theta())

    def distance(self, a: Genome, b: Genome) -> float:
        return float(np.linalg.norm(self.vector(a) - self.vector(b)))


class AugmentationSpace(_MetaSpace):
    """Policies of up to ``space.meta.augment_max_ops`` entries over ``space.meta.augment_ops``;
    with ``space.meta.augment_phases`` > 1, schedules of that many policies (PBA), one per equal
    share of the training, as ``{"phases": [...]}``."""

    component = "augmentation"

    @property
    def key(self) -> str:
        return "phases" if self.cfg.augment_phases > 1 else "policy"

    def _policies(self, genome: Genome) -> list[list[list]]:
        v = genome.payload()
        return v["phases"] if "phases" in v else [v["policy"]]

    def _genome(self, phases: list[list[list]]) -> Genome:
        return self.genome({"phases": phases} if self.cfg.augment_phases > 1 else {"policy": phases[0]})

    def sample(self, rng: np.random.Generator) -> Genome:
        ops, k = list(self.cfg.augment_ops), self.cfg.augment_max_ops
        return self._genome([aug.random_policy(rng, ops, k) for _ in range(self.cfg.augment_phases)])

    def mutate(self, genome: Genome, rng: np.random.Generator, rate: float | None = None) -> Genome:
        ops, k = list(self.cfg.augment_ops), self.cfg.augment_max_ops
        return self._genome(aug.mutate_schedule(self._policies(genome), rng, ops, k))

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        """One policy: the head of one parent's entries and the tail of the other's. A schedule:
        each phase from either parent."""
        pa, pb = self._policies(a), self._policies(b)
        if len(pa) > 1:
            return self._genome([x if rng.random() < 0.5 else y for x, y in zip(pa, pb)])
        pa, pb = pa[0], pb[0]
        cut_a, cut_b = int(rng.integers(1, len(pa) + 1)), int(rng.integers(0, len(pb) + 1))
        return self._genome([(pa[:cut_a] + pb[cut_b:])[: self.cfg.augment_max_ops]])

    def largest(self) -> Genome:
        return self._genome([[list(e) for e in aug.HAND_MADE] for _ in range(self.cfg.augment_phases)])

    def distance(self, a: Genome, b: Genome) -> float:
        d = 0.0
        for pa, pb in zip(self._policies(a), self._policies(b)):
            d += abs(len(pa) - len(pb)) * 3.0
            for ea, eb in zip(pa, pb):
                d += (ea[0] != eb[0]) + abs(ea[1] - eb[1]) / aug.LEVELS + abs(ea[2] - eb[2]) / aug.LEVELS
        return float(d)

    def _check(self, value: dict) -> None:
        super()._check(value)
        phases = value["phases"] if "phases" in value else [value["policy"]]
        if len(phases) != self.cfg.augment_phases:
            raise ValueError(f"a schedule of this space has {self.cfg.augment_phases} phase(s), got {len(phases)}")
        for p in phases:
            if not p or len(p) > self.cfg.augment_max_ops:
                raise ValueError(f"a policy holds 1..{self.cfg.augment_max_ops} entries, got {len(p)}")


META_SPACES = {"activation": ActivationSpace, "loss": LossSpace, "augmentation": AugmentationSpace}


def from_config(cfg) -> _MetaSpace:
    """The meta space of a whole config (``space.kind``, ``space.meta``, ``evaluation.meta``)."""
    from nas.meta.components import fixed_activation

    return META_SPACES[cfg.space.kind](cfg.space.meta, cfg.evaluation.meta.channels, fixed_activation(cfg))

"""The weight-agnostic network space (Gaier & Ha, NeurIPS 2019): topologies searched alone.

A genome is a NEAT-style feed-forward graph, stored as the canonical JSON of::

    {"inputs": n_in, "outputs": n_out, "out_act": "linear",
     "hidden": [[id, activation], ...],          # sorted by id
     "conns": [[source, destination], ...]}      # enabled connections, sorted

Node ids: inputs ``0..n_in-1``, the bias ``n_in`` (always 1), outputs ``n_in+1..n_in+n_out``,
hidden nodes from ``n_in+n_out+1`` up, each new one numbered one above the largest. There are
no connection weights: every connection carries the one shared weight the evaluation sets.

Networks **start minimal** (:meth:`WANNSpace.sample`: some input → output connections, drawn
with ``init_connection_prob``, no hidden node) and grow by mutation only (:meth:`WANNSpace.mutate`):

- **add node**: split an enabled connection ``a → b`` into ``a → h → b`` with a new hidden node
  ``h`` of a random activation; ``a → b`` is disabled (removed from ``conns``);
- **add connection** between two unconnected nodes such that the graph stays feed-forward
  (never into an input or the bias, never out of an output, never closing a cycle);
- **change activation** of one hidden node.

No crossover (the paper needs none). Every operator keeps the graph valid
(:meth:`WANNSpace.validate`: known ids and activations, no duplicate connection, acyclic).
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np

from nas.genome import Genome, canonical_json
from nas.wann.network import ACTIVATIONS

MUTATIONS = ("add_node", "add_connection", "change_activation")


class WANNSpace:
    name = "wann"

    def __init__(self, n_in: int, n_out: int, activations: list[str] | tuple[str, ...] = ACTIVATIONS,
                 init_connection_prob: float = 0.25, out_act: str = "linear",
                 mutation: dict[str, float] | None = None, max_hidden: int = 200):
        bad = [a for a in [*activations, out_act] if a not in ACTIVATIONS]
        if bad:
            raise ValueError(f"unknown WANN activation(s) {bad}; choose from {list(ACTIVATIONS)}")
        if n_in < 1 or n_out < 1:
            raise ValueError(f"a WANN needs at least one input and one output, got {n_in} and {n_out}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activations = tuple(activations)
        self.init_connection_prob = float(init_connection_prob)
        self.out_act = out_act
        self.mutation = dict(mutation or {"add_node": 0.25, "add_connection": 0.25, "change_activation": 0.5})
        self.max_hidden = int(max_hidden)

    # --- ids -------------------------------------------------------------------------------
    @property
    def bias(self) -> int:
        return self.n_in

    @property
    def outputs(self) -> list[int]:
        return list(range(self.n_in + 1, self.n_in + 1 + self.n_out))

    @property
    def first_hidden(self) -> int:
        return self.n_in + 1 + self.n_out

    # --- genome <-> spec -------------------------------------------------------------------
    def genome(self, hidden: dict[int, str], conns) -> Genome:
        spec = {"inputs": self.n_in, "outputs": self.n_out, "out_act": self.out_act,
                "hidden": [[int(i), hidden[i]] for i in sorted(hidden)],
                "conns": sorted([int(s), int(d)] for s, d in set(map(tuple, conns)))}
        return Genome((), self.name, canonical_json(spec))

    @staticmethod
    def spec(genome: Genome) -> dict:
        return json.loads(genome.spec)

    @staticmethod
    def connections(genome: Genome) -> int:
        return len(json.loads(genome.spec)["conns"])

    def graph(self, genome: Genome) -> nx.DiGraph:
        """The network as a networkx graph; node attributes ``role`` and ``act``."""
        spec = self.spec(genome)
        g = nx.DiGraph()
        g.add_nodes_from(range(self.n_in), role="input", act=None)
        g.add_node(self.bias, role="bias", act=None)
        g.add_nodes_from(self.outputs, role="output", act=spec.get("out_act", "linear"))
        for i, a in spec["hidden"]:
            g.add_node(int(i), role="hidden", act=a)
        g.add_edges_from((int(s), int(d)) for s, d in spec["conns"])
        return g

    # --- contract --------------------------------------------------------------------------
    def validate(self, genome: Genome) -> None:
        if genome.space != self.name:
            raise ValueError(f"genome of space {genome.space!r} given to space {self.name!r}")
        try:
            spec = json.loads(genome.spec)
        except (TypeError, ValueError):
            raise ValueError("a WANN genome must be a JSON object (inputs, outputs, hidden, conns)") from None
        if not isinstance(spec, dict) or not {"inputs", "outputs", "hidden", "conns"} <= set(spec):
            raise ValueError("a WANN genome needs the fields inputs, outputs, hidden and conns")
        if (spec["inputs"], spec["outputs"]) != (self.n_in, self.n_out):
            raise ValueError(f"the genome has {spec['inputs']} inputs and {spec['outputs']} outputs; this task has "
                             f"{self.n_in} inputs and {self.n_out} outputs")
        if spec.get("out_act", "linear") not in ACTIVATIONS:
            raise ValueError(f"unknown output activation {spec.get('out_act')!r}")
        hidden = {}
        for item in spec["hidden"]:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
                raise ValueError(f"hidden entry {item!r} is not [id, activation]")
            i, a = item
            if i < self.first_hidden or i in hidden:
                raise ValueError(f"hidden node id {i} is reserved or repeated (hidden ids start at {self.first_hidden})")
            if a not in ACTIVATIONS:
                raise ValueError(f"hidden node {i}: unknown activation {a!r}; choose from {list(ACTIVATIONS)}")
            hidden[i] = a
        sources = set(range(self.n_in + 1)) | set(hidden)
        dests = set(self.outputs) | set(hidden)
        seen = set()
        for c in spec["conns"]:
            if not (isinstance(c, list) and len(c) == 2):
                raise ValueError(f"connection {c!r} is not [source, destination]")
            s, d = c
            if s not in sources:
                raise ValueError(f"connection {s}->{d}: {s} is not an input, the bias or a hidden node")
            if d not in dests:
                raise ValueError(f"connection {s}->{d}: {d} is not a hidden or output node")
            if (s, d) in seen:
                raise ValueError(f"connection {s}->{d} appears twice")
            seen.add((s, d))
        if not nx.is_directed_acyclic_graph(self.graph(genome)):
            raise ValueError("the WANN graph has a cycle: it must be feed-forward")
        if not seen:
            raise ValueError("a WANN genome needs at least one connection")

    def sample(self, rng: np.random.Generator) -> Genome:
        """A minimal network: each (input or bias, output) pair connected with probability
        ``init_connection_prob`` (at least one connection), no hidden node."""
        srcs = np.arange(self.n_in + 1)
        mask = rng.random((len(srcs), self.n_out)) < self.init_connection_prob
        if not mask.any():
            mask[int(rng.integers(len(srcs))), int(rng.integers(self.n_out))] = True
        conns = [(int(srcs[i]), self.outputs[j]) for i, j in zip(*np.nonzero(mask))]
        return self.genome({}, conns)

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """One topology mutation, chosen by the ``mutation`` weights; an operator that cannot
        apply (nothing to split, no free pair, no hidden node) gives way to another, so the child
        always differs from its parent."""
        spec = self.spec(genome)
        hidden = {int(i): a for i, a in spec["hidden"]}
        conns = {(int(s), int(d)) for s, d in spec["conns"]}
        names = [m for m in MUTATIONS if self.mutation.get(m, 0) > 0]
        p = np.array([self.mutation[m] for m in names], dtype=float)
        for _ in range(20):
            op = names[int(rng.choice(len(names), p=p / p.sum()))]
            out = getattr(self, "_" + op)(dict(hidden), set(conns), rng)
            if out is not None:
                return self.genome(*out)
        raise ValueError("no WANN mutation applies to this genome")

    def _add_node(self, hidden, conns, rng):
        if not conns or len(hidden) >= self.max_hidden:
            return None
        s, d = sorted(conns)[int(rng.integers(len(conns)))]
        h = max([self.first_hidden - 1, *hidden]) + 1
        hidden[h] = self.activations[int(rng.integers(len(self.activations)))]
        conns.discard((s, d))
        conns |= {(s, h), (h, d)}
        return hidden, conns

    def _add_connection(self, hidden, conns, rng):
        """A new connection between a random free (source, destination) pair that keeps the graph
        acyclic: the pairs are drawn in a random order and the first that does not close a cycle
        is taken."""
        srcs = [*range(self.n_in + 1), *sorted(hidden)]
        dsts = [*sorted(hidden), *self.outputs]
        d_at = {d: j for j, d in enumerate(dsts)}
        taken = np.zeros((len(srcs), len(dsts)), dtype=bool)  # the pairs not free: existing, or s == d
        for i, s in enumerate(srcs):
            if s in d_at:
                taken[i, d_at[s]] = True
        s_at = {s: i for i, s in enumerate(srcs)}
        for s, d in conns:
            if s in s_at and d in d_at:
                taken[s_at[s], d_at[d]] = True
        free = np.flatnonzero(~taken)  # row-major: sources in order, then destinations
        order = rng.permutation(len(free))
        readers: dict[int, list[int]] = {}
        for s, d in conns:
            readers.setdefault(s, []).append(d)
        for k in order:
            i = int(free[int(k)])
            s, d = srcs[i // len(dsts)], dsts[i % len(dsts)]
            if not _reaches(readers, d, s):  # s -> d would close a cycle exactly when d already reaches s
                conns.add((s, d))
                return hidden, conns
        return None

    def _change_activation(self, hidden, conns, rng):
        if not hidden or len(self.activations) < 2:
            return None
        h = sorted(hidden)[int(rng.integers(len(hidden)))]
        hidden[h] = [a for a in self.activations if a != hidden[h]][int(rng.integers(len(self.activations) - 1))]
        return hidden, conns

    def describe(self, genome: Genome) -> str:
        spec = self.spec(genome)
        acts = {}
        for _, a in spec["hidden"]:
            acts[a] = acts.get(a, 0) + 1
        mix = ", ".join(f"{a} {n}" for a, n in sorted(acts.items())) or "none"
        used = len({s for s, _ in spec["conns"] if s < self.n_in})
        return (f"WANN {self.n_in} inputs ({used} used) -> {self.n_out} outputs, {len(spec['hidden'])} hidden "
                f"({mix}), {len(spec['conns'])} connections")

    def readable(self, genome: Genome) -> dict:
        return self.spec(genome)

    def largest(self) -> Genome:
        """Every input and the bias connected to every output, no hidden node: the fixed
        fully connected topology the benchmark compares with."""
        return self.genome({}, [(s, o) for s in range(self.n_in + 1) for o in self.outputs])

    def smallest(self) -> Genome:
        return self.genome({}, [(0, self.outputs[0])])

    def distance(self, a: Genome, b: Genome) -> float:
        """Connections in one and not the other, plus hidden nodes whose activation differs or
        that only one has."""
        sa, sb = self.spec(a), self.spec(b)
        ca, cb = set(map(tuple, sa["conns"])), set(map(tuple, sb["conns"]))
        ha, hb = dict(map(tuple, sa["hidden"])), dict(map(tuple, sb["hidden"]))
        nodes = sum(ha.get(k) != hb.get(k) for k in set(ha) | set(hb))
        return float(len(ca ^ cb) + nodes)

    def build(self, genome: Genome, input_shape: tuple[int, ...], num_classes: int, weight: float = 1.0):
        """The network as a torch module with one shared weight (no parameters to train)."""
        from nas.wann.network import WannNet

        n_in = int(np.prod(input_shape))
        if n_in != self.n_in or num_classes != self.n_out:
            raise ValueError(f"the WANN space has {self.n_in} inputs and {self.n_out} outputs; asked for input shape "
                             f"{tuple(input_shape)} ({n_in} values) and {num_classes} outputs")
        return WannNet(self.spec(genome), weight)


def _reaches(readers: dict[int, list[int]], start: int, goal: int) -> bool:
    """Whether a path of connections leads from ``start`` to ``goal``."""
    seen, stack = {start}, [start]
    while stack:
        for n in readers.get(stack.pop(), ()):
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return False

"""NAS-Bench-NLP-style recurrent cell search space (Klyuchnikov et al., 2022).

A recurrent cell computes new hidden states from the input ``x`` (of the step) and the previous
states ``h_prev_0`` (and ``h_prev_1`` with ``hidden=2``, the cell state of an LSTM). Each op
node applies one operation to earlier nodes:

* ``linear``: ``W_1 a + W_2 b (+ W_3 c) + bias`` over 1 to 3 distinct inputs;
* ``blend``: ``z * a + (1 - z) * b`` over 3 inputs, the first (``z``) the gate;
* ``elementwise_prod`` and ``elementwise_sum`` over 2 distinct inputs;
* ``activation_tanh``, ``activation_sigm``, ``activation_leaky_relu`` over 1 input.

Output ``h_new_i`` is one op node per state. The LSTM and GRU cells are expressible
(``LSTM`` and ``GRU`` below, as NAS-Bench-NLP writes them).

**Genome.** ``nodes`` slots (default 14), each four genes: op, then three input references
(0 = ``x``, 1.. = the previous states, then slot ``j`` as ``1 + hidden + j``; a slot may only
reference inputs and earlier slots, so every vector is acyclic), then one gene per state naming
the slot that outputs it. Which input genes count depends on the op (linear: its distinct
references; blend: all three in order; prod, sum: the first two, which must differ;
activations: the first). Slots that no output depends on are pruned. A valid cell uses ``x``
and every previous state. Genomes are stored in canonical form: the used nodes renumbered by
a Weisfeiler-Lehman-style signature (each node's op and its inputs' signatures upward, its
consumers' downward), commutative inputs sorted, unused slots empty, so isomorphic cells are
one genome (as NAS-Bench-101's hash, exact except for rare symmetric ties).

**Operators** (randomness from the caller's generator): ``mutate``, NAS-Bench-NLP's two moves
(re-point one input of a used node to another earlier node or input, which may bring an unused
slot into use, or change the op of a node to another of the same arity: an activation to
another, sum to prod and back), redrawn until valid and new; ``standard_crossover``, each gene
of the slot encoding from either parent; ``sep_crossover``, SEP on the cell graphs.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import networkx as nx
import numpy as np

from nas.genome import Genome
from nas.spaces.cells import CellSpace

OPS: tuple[str, ...] = ("linear", "blend", "elementwise_prod", "elementwise_sum", "activation_tanh",
                        "activation_sigm", "activation_leaky_relu")
SHORT = {"linear": "linear", "blend": "blend", "elementwise_prod": "prod", "elementwise_sum": "sum",
         "activation_tanh": "tanh", "activation_sigm": "sigm", "activation_leaky_relu": "lrelu"}
ACTIVATIONS = ("activation_tanh", "activation_sigm", "activation_leaky_relu")
SPACE_NAME = "rnn_cell"
MAX_TRIES = 1000

#: NAS-Bench-NLP's LSTM and GRU cells: node -> (op, inputs); inputs x, h_prev_0, h_prev_1; outputs
#: h_new_0 (and h_new_1, the LSTM's cell state).
LSTM: dict[str, tuple[str, tuple[str, ...]]] = {
    "i": ("linear", ("x", "h_prev_0")), "j": ("linear", ("x", "h_prev_0")),
    "f": ("linear", ("x", "h_prev_0")), "o": ("linear", ("x", "h_prev_0")),
    "i_act": ("activation_tanh", ("i",)), "j_act": ("activation_sigm", ("j",)),
    "f_act": ("activation_sigm", ("f",)), "o_act": ("activation_tanh", ("o",)),
    "c_keep": ("elementwise_prod", ("f_act", "h_prev_1")), "c_add": ("elementwise_prod", ("i_act", "j_act")),
    "h_new_1": ("elementwise_sum", ("c_keep", "c_add")), "c_act": ("activation_tanh", ("h_new_1",)),
    "h_new_0": ("elementwise_prod", ("c_act", "o_act")),
}
GRU: dict[str, tuple[str, tuple[str, ...]]] = {
    "r": ("linear", ("x", "h_prev_0")), "z": ("linear", ("x", "h_prev_0")),
    "r_act": ("activation_sigm", ("r",)), "z_act": ("activation_sigm", ("z",)),
    "rh": ("elementwise_prod", ("r_act", "h_prev_0")), "h_tilde": ("linear", ("x", "rh")),
    "h_tilde_act": ("activation_tanh", ("h_tilde",)),
    "h_new_0": ("blend", ("z_act", "h_prev_0", "h_tilde_act")),
}


def _arity_refs(op: str, refs: tuple[int, int, int]) -> tuple[int, ...] | None:
    """The inputs an op reads from its three reference genes, or None when they are unusable."""
    if op == "linear":
        return tuple(sorted(set(refs)))
    if op == "blend":
        return refs if len(set(refs)) == 3 else None
    if op in ("elementwise_prod", "elementwise_sum"):
        return tuple(sorted(refs[:2])) if refs[0] != refs[1] else None
    return refs[:1]


def _h(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


@lru_cache(maxsize=1 << 17)
def _canonical(values: tuple[int, ...], slots: int, hidden: int, ops: tuple[str, ...]) -> tuple[int, ...] | None:
    n_in = 1 + hidden
    outs = values[4 * slots:]
    reads: dict[int, tuple[int, ...]] = {}
    # used slots: what the outputs depend on
    stack, used = [n_in + int(o) for o in outs], set()
    while stack:
        r = stack.pop()
        if r < n_in or r in used:
            continue
        s = r - n_in
        op = ops[values[4 * s]]
        rd = _arity_refs(op, tuple(int(v) for v in values[4 * s + 1:4 * s + 4]))
        if rd is None:
            return None
        used.add(r)
        reads[r] = rd
        stack.extend(rd)
    # every input must be used
    reached = set()
    for r in reads:
        reached.update(x for x in reads[r] if x < n_in)
    if len(reached) != n_in:
        return None
    order = sorted(used)  # slot order is topological
    up: dict[int, str] = {i: f"in{i}" for i in range(n_in)}
    for r in order:
        op = ops[values[4 * (r - n_in)]]
        args = [up[x] for x in reads[r]]
        up[r] = _h(op, args if op == "blend" else sorted(args))
    down: dict[int, str] = {r: "" for r in range(n_in)} | {r: "" for r in order}
    feeds: dict[int, list] = {r: [] for r in down}
    for k, o in enumerate(outs):
        feeds[n_in + int(o)].append(("out", k))
    for r in reversed(order):
        down[r] = _h(sorted(feeds[r]))
        op = ops[values[4 * (r - n_in)]]
        for pos, x in enumerate(reads[r]):
            feeds[x].append((up[r], down[r], pos if op == "blend" else -1))
    key = {r: (up[r], down[r]) for r in order}
    # canonical topological order: always place the smallest-key node whose inputs are placed
    placed: dict[int, int] = {i: i for i in range(n_in)}
    left = set(order)
    while left:
        ready = [r for r in left if all(x in placed for x in reads[r])]
        r = min(ready, key=lambda q: (key[q], q))
        placed[r] = len(placed)
        left.discard(r)
    out = [0] * (4 * slots) + [0] * hidden
    for r in order:
        s = placed[r] - n_in
        op = ops[values[4 * (r - n_in)]]
        rd = [placed[x] for x in reads[r]]
        if op != "blend":
            rd = sorted(rd)
        rd = (rd + [rd[0]] * 3)[:3]
        out[4 * s:4 * s + 4] = [int(values[4 * (r - n_in)]), *rd]
    for k, o in enumerate(outs):
        out[4 * slots + k] = placed[n_in + int(o)] - n_in
    return tuple(out)


class RNNCellSpace(CellSpace):
    """NAS-Bench-NLP-style recurrent cells (module docstring); ``hidden_size`` sizes the
    trainable sequence classifier (``nas.spaces.rnn_cell_build``)."""

    name = SPACE_NAME

    def __init__(self, hidden: int = 2, nodes: int = 14, ops: tuple[str, ...] = OPS, crossover: str = "uniform",
                 hidden_size: int = 64):
        if hidden not in (1, 2):
            raise ValueError(f"hidden must be 1 (GRU-like) or 2 (LSTM-like, with a cell state), got {hidden}")
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1, got {nodes}")
        self.ops = tuple(ops)
        if not self.ops or len(set(self.ops)) != len(self.ops) or any(o not in OPS for o in self.ops):
            raise ValueError(f"ops must be distinct names from {list(OPS)}, got {list(self.ops)}")
        if crossover not in ("uniform", "sep"):
            raise ValueError(f"unknown crossover {crossover!r}; expected uniform or sep")
        self.hidden, self.slots, self.crossover_kind, self.hidden_size = hidden, nodes, crossover, hidden_size
        self.inputs = ("x", "h_prev_0", "h_prev_1")[:1 + hidden]
        self.n_in = 1 + hidden

    # --- encoding -------------------------------------------------------------------
    @property
    def n_var(self) -> int:
        return 4 * self.slots + self.hidden

    @property
    def upper_bounds(self) -> np.ndarray:
        ub = []
        for s in range(self.slots):
            ub += [len(self.ops) - 1] + [self.n_in + s - 1] * 3
        return np.array(ub + [self.slots - 1] * self.hidden, dtype=np.int64)

    def canonical_or_none(self, values) -> Genome | None:
        v = tuple(int(x) for x in np.asarray(values).ravel())
        if len(v) != self.n_var:
            raise ValueError(f"a {self.slots}-node cell has {self.n_var} genes, got {len(v)}")
        if any(x < 0 or x > u for x, u in zip(v, self.upper_bounds)):
            raise ValueError(f"genes {list(v)} out of bounds 0..{list(self.upper_bounds)}")
        c = _canonical(v, self.slots, self.hidden, self.ops)
        return None if c is None else Genome(c, self.name)

    def canonical(self, values) -> Genome:
        g = self.canonical_or_none(self.clip(values))
        if g is None:
            raise ValueError(f"{list(np.asarray(values).ravel())} is not a valid cell (an op with unusable inputs, "
                             "or x or a previous state unused)")
        return g

    def validate(self, genome: Genome) -> None:
        super().validate(genome)
        c = self.canonical_or_none(genome.values)
        if c is None:
            raise ValueError(f"genome {list(genome.values)} is not a valid recurrent cell")
        if c != genome:
            raise ValueError(f"genome {list(genome.values)} is not in canonical form ({list(c.values)})")

    def nodes(self, genome: Genome) -> list[tuple[str, tuple[int, ...]]]:
        """The used nodes in order, each ``(op, input refs)`` (refs: 0 = x, then the states, then
        node ``j`` as ``n_in + j``)."""
        v = genome.values
        return [(self.ops[v[4 * s]], _arity_refs(self.ops[v[4 * s]], tuple(v[4 * s + 1:4 * s + 4])))
                for s in range(self.n_used(genome))]

    def outputs(self, genome: Genome) -> tuple[int, ...]:
        return tuple(genome.values[4 * self.slots:])

    def n_used(self, genome: Genome) -> int:
        # canonical form: the used nodes first, in topological order, so the last one feeds no node: an output
        return max(self.outputs(genome)) + 1

    def from_recipe(self, recipe: dict[str, tuple[str, tuple[str, ...]]]) -> Genome:
        """The genome of a NAS-Bench-NLP-style recipe ``{node: (op, inputs)}`` whose outputs are
        named ``h_new_0`` (and ``h_new_1``); ValueError naming what is wrong."""
        names = list(self.inputs)
        todo = dict(recipe)
        order: list[str] = []
        while todo:
            ready = [n for n, (_op, ins) in todo.items() if all(i in names or i in order for i in ins)]
            if not ready:
                raise ValueError(f"recipe has a cycle or unknown inputs among {sorted(todo)}")
            for n in ready:
                order.append(n)
                del todo[n]
        if len(order) > self.slots:
            raise ValueError(f"recipe has {len(order)} nodes; this space holds at most {self.slots}")
        ref = {n: i for i, n in enumerate(self.inputs)} | {n: self.n_in + k for k, n in enumerate(order)}
        vals = [0] * self.n_var
        for k, n in enumerate(order):
            op, ins = recipe[n]
            if op not in self.ops:
                raise ValueError(f"recipe node {n!r}: unknown op {op!r}")
            if not 1 <= len(ins) <= 3:
                raise ValueError(f"recipe node {n!r} has {len(ins)} inputs")
            rs = [ref[i] for i in ins]
            vals[4 * k:4 * k + 4] = [self.ops.index(op), *(rs + [rs[0]] * 3)[:3]]
        for h in range(self.hidden):
            if f"h_new_{h}" not in ref:
                raise ValueError(f"recipe has no output node h_new_{h}")
            vals[4 * self.slots + h] = ref[f"h_new_{h}"] - self.n_in
        return self.canonical(vals)

    # --- graphs and distance ------------------------------------------------------------
    def to_graph(self, genome: Genome) -> nx.DiGraph:
        """Inputs and outputs as role nodes (``x``, ``h_prev_i``, ``h_new_i``), op nodes with ``op``;
        a blend's in-edges carry ``slot`` (0 = the gate)."""
        g = nx.DiGraph()
        for i, name in enumerate(self.inputs):
            g.add_node(i, op=name, role=name)
        for k, (op, rd) in enumerate(self.nodes(genome)):
            g.add_node(self.n_in + k, op=op)
            for pos, r in enumerate(rd):
                g.add_edge(r, self.n_in + k, **({"slot": pos} if op == "blend" else {}))
        base = self.n_in + self.n_used(genome)
        for h, o in enumerate(self.outputs(genome)):
            g.add_node(base + h, op=f"h_new_{h}", role=f"h_new_{h}")
            g.add_edge(self.n_in + o, base + h)
        return g

    def from_graph(self, graph: nx.DiGraph) -> Genome | None:
        """The genome of a cell graph, or None when it is not a valid cell of this space."""
        if not nx.is_directed_acyclic_graph(graph):
            return None
        role = {d.get("role"): n for n, d in graph.nodes(data=True) if d.get("role") is not None}
        want = set(self.inputs) | {f"h_new_{h}" for h in range(self.hidden)}
        if set(role) != want:
            return None
        ops = [n for n in nx.lexicographical_topological_sort(graph) if graph.nodes[n].get("role") is None]
        if len(ops) > self.slots or any(graph.nodes[n].get("op") not in self.ops for n in ops):
            return None
        ref = {role[name]: i for i, name in enumerate(self.inputs)} | {n: self.n_in + k for k, n in enumerate(ops)}
        vals = [0] * self.n_var
        for k, n in enumerate(ops):
            op = graph.nodes[n]["op"]
            preds = sorted(graph.predecessors(n), key=lambda p: (graph.edges[p, n].get("slot", 9), ref.get(p, -1)))
            if any(p not in ref for p in preds):
                return None  # fed by an output node
            need = {"linear": (1, 3), "blend": (3, 3)}.get(op, (2, 2) if op.startswith("elementwise") else (1, 1))
            if not need[0] <= len(preds) <= need[1]:
                return None
            rs = [ref[p] for p in preds]
            vals[4 * k:4 * k + 4] = [self.ops.index(op), *(rs + [rs[0]] * 3)[:3]]
        for h in range(self.hidden):
            out = role[f"h_new_{h}"]
            preds = list(graph.predecessors(out))
            if len(preds) != 1 or preds[0] not in ref or ref[preds[0]] < self.n_in or graph.out_degree(out):
                return None
            vals[4 * self.slots + h] = ref[preds[0]] - self.n_in
        if any(graph.in_degree(role[name]) for name in self.inputs):
            return None
        return self.canonical_or_none(vals)

    def distance(self, a: Genome, b: Genome) -> float:
        """The GED, the smaller of both directions (an upper bound need not be symmetric)."""
        return min(self.ged(a, b), self.ged(b, a))

    def describe(self, genome: Genome) -> str:
        """e.g. ``n0=linear(x,h0) n1=sigm(n0) ... h_new_0=n4``."""
        names = ["x", *(f"h{i}" for i in range(self.hidden))]
        parts = []
        for k, (op, rd) in enumerate(self.nodes(genome)):
            parts.append(f"n{k}={SHORT[op]}(" + ",".join(names[r] if r < self.n_in else f"n{r - self.n_in}"
                                                          for r in rd) + ")")
        parts += [f"h_new_{h}=n{o}" for h, o in enumerate(self.outputs(genome))]
        return " ".join(parts)

    # --- special members -----------------------------------------------------------------
    def largest(self) -> Genome:
        """The LSTM (``hidden=2``) or GRU (``hidden=1``) cell."""
        return self.from_recipe(LSTM if self.hidden == 2 else GRU)

    def smallest(self) -> Genome:
        """One linear node over every input, output as every state."""
        vals = [0] * self.n_var
        vals[0:4] = [self.ops.index("linear") if "linear" in self.ops else 0, 0, 1, self.n_in - 1]
        return self.canonical(vals)

    # --- variation -------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Genome:
        """Every gene uniform in its bounds, redrawn until valid."""
        ub = self.upper_bounds
        for _ in range(MAX_TRIES * 10):
            g = self.canonical_or_none(rng.integers(0, ub + 1))
            if g is not None:
                return g
        raise RuntimeError(f"no valid recurrent cell in {MAX_TRIES * 10} random draws")

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """One move, redrawn until the child is valid and new: NAS-Bench-NLP's two (re-point one
        input of a node to any earlier node or input; change a node's op to another of the same
        arity) with probability 1/3 each, and, while a slot is free, inserting a node (any op) in
        front of one input of a node, fed by that input and, for wider ops, by other earlier
        nodes or inputs (NAS-Bench-NLP's mutation never adds a node, so it could never grow a
        random cell into the 13-node LSTM; removing a node is a re-point that bypasses it)."""
        self.validate(genome)
        used = self.n_used(genome)
        base = [list(genome.values[4 * s:4 * s + 4]) for s in range(used)]
        outs = list(self.outputs(genome))
        for _ in range(MAX_TRIES):
            nodes = [list(n) for n in base]
            outputs = list(outs)
            s = int(rng.integers(used))
            op = self.ops[nodes[s][0]]
            width = 3 if op in ("linear", "blend") else (2 if op.startswith("elementwise") else 1)
            move = int(rng.integers(3 if used < self.slots else 2))
            if move == 0:  # re-point
                nodes[s][1 + int(rng.integers(width))] = int(rng.integers(self.n_in + s))
            elif move == 1:  # op of the same arity
                same = [o for o in (ACTIVATIONS if op in ACTIVATIONS else
                                    ("elementwise_prod", "elementwise_sum") if op.startswith("elementwise") else ())
                        if o != op and o in self.ops]
                if not same:
                    continue
                nodes[s][0] = self.ops.index(same[int(rng.integers(len(same)))])
            else:  # insert a node in front of input ``pos`` of node ``s``
                pos = int(rng.integers(width))
                src = nodes[s][1 + pos]
                new_op = int(rng.integers(len(self.ops)))
                extra = [int(rng.integers(self.n_in + s)) for _ in range(2)]
                for n in nodes:  # refs to node s and later shift by one
                    n[1:] = [r + 1 if r >= self.n_in + s else r for r in n[1:]]
                outputs = [o + 1 if o >= s else o for o in outputs]
                nodes.insert(s, [new_op, src, *extra])
                nodes[s + 1][1 + pos] = self.n_in + s
            v = [0] * self.n_var
            for k, n in enumerate(nodes):
                v[4 * k:4 * k + 4] = n
            v[4 * self.slots:] = outputs
            g = self.canonical_or_none(v)
            if g is not None and g != genome:
                return g
        raise RuntimeError(f"no valid mutant of {self.describe(genome)} in {MAX_TRIES} tries")

    def cache_key(self) -> tuple:
        return (self.hidden, self.slots, self.ops)

    def build(self, genome: Genome, input_shape: tuple[int, ...], num_classes: int):
        """A freshly initialised sequence classifier reading an image row by row (``nas.spaces.rnn_cell_build``)."""
        from nas.spaces.rnn_cell_build import build_rnn_cell

        self.validate(genome)
        return build_rnn_cell(self, genome, input_shape, num_classes)


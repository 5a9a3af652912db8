"""NAS-Bench-201 (NATS-Bench topology) cell search space.

A cell is a DAG of four nodes; node 0 is the cell input and node ``j`` (1..3) sums one
operation applied to every earlier node ``i < j``. That gives six edges, taken in the
order of the NAS-Bench-201 architecture string::

    node1<-0, node2<-0, node2<-1, node3<-0, node3<-1, node3<-2

and the genome is the six operation indices into ``OPS`` (5**6 = 15,625 cells). The same
cell is repeated throughout the fixed macro skeleton (see ``nas.spaces.nb201_build``).
Arch strings look exactly like NAS-Bench-201's, e.g.::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

There are no inactive genes, so every genome in bounds is already canonical (cells that are
isomorphic or disconnected by ``none`` edges are *not* merged: NAS-Bench-201 lists them as
distinct rows too). This module never builds torch modules.

Crossover is uniform (each edge's op from either parent) by default, or the Shortest-Edit-Path
crossover of Qiu & Miikkulainen (2023) with ``NB201Space(crossover="sep")``. SEP works on the
edge-to-node form of a cell that the paper uses for NAS-Bench-201 (``cell_to_graph``): the
four cell nodes become structural nodes with fixed roles (``input``, ``node1``, ``node2``,
``output``; never inserted, deleted or matched with anything but their namesake) and every
edge whose op is not ``none`` becomes an op node wired ``from -> op node -> to``.
``graph_to_cell`` is the inverse, and None for graphs that are not cells.
"""

from __future__ import annotations

from functools import lru_cache

import networkx as nx
import numpy as np

from nas.genome import Genome
from nas.operators.sep import EditPath, edit_path, sep_crossover
from nas.spaces.base import IntegerVectorSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_NODES = 4
#: ``(to_node, from_node)`` of each gene, in arch-string order.
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, N_NODES) for i in range(j))
SPACE_NAME = "nb201"
#: Crossover operators ``NB201Space`` accepts.
CROSSOVERS: tuple[str, ...] = ("uniform", "sep")
#: ``(role, op)`` of the structural graph node of each cell node 0..3 (see ``cell_to_graph``).
CELL_NODES: tuple[tuple[str, str], ...] = (("input", "input"), ("node1", "sum"), ("node2", "sum"),
                                           ("output", "output"))


def _input_output_paths() -> list[tuple[tuple[int, int], ...]]:
    """Every path of edges from node 0 to the output node, as (to, from) edge tuples."""
    out = []

    def walk(node: int, path: tuple) -> None:
        if node == N_NODES - 1:
            out.append(path)
            return
        for j in range(node + 1, N_NODES):
            walk(j, path + ((j, node),))

    walk(0, ())
    return out


_PATHS = _input_output_paths()


def parse_arch(s: str, ops: tuple[str, ...] = OPS) -> Genome:
    """The genome of a NAS-Bench-201 arch string; ``ValueError`` naming the bad part if malformed."""
    if not isinstance(s, str):
        raise ValueError(f"arch string must be a str, got {type(s).__name__}: {s!r}")
    nodes = s.split("+")
    if len(nodes) != N_NODES - 1:
        raise ValueError(f"arch string {s!r} has {len(nodes)} node(s) separated by '+', "
                         f"expected {N_NODES - 1}")
    values: list[int] = []
    for j, node in enumerate(nodes, start=1):
        if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"arch string {s!r}: node {j} part {node!r} must be enclosed in '|'")
        edges = node[1:-1].split("|")
        if len(edges) != j:
            raise ValueError(f"arch string {s!r}: node {j} part {node!r} has {len(edges)} input(s), "
                             f"expected {j}")
        for i, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep:
                raise ValueError(f"arch string {s!r}: edge {edge!r} of node {j} is not 'op~index'")
            if op not in ops:
                raise ValueError(f"arch string {s!r}: unknown op {op!r} in edge {edge!r} of node {j}; "
                                 f"known ops: {', '.join(ops)}")
            if src != str(i):
                raise ValueError(f"arch string {s!r}: edge {edge!r} of node {j} has input index {src!r}, "
                                 f"expected {i}")
            values.append(ops.index(op))
    return Genome(tuple(values), SPACE_NAME)


def format_arch(genome: Genome, ops: tuple[str, ...] = OPS) -> str:
    """The NAS-Bench-201 arch string of ``genome`` (the exact inverse of ``parse_arch``)."""
    v = tuple(genome.values)
    if genome.space != SPACE_NAME:
        raise ValueError(f"genome of space {genome.space!r} is not an {SPACE_NAME!r} genome")
    if len(v) != len(EDGES) or any(not 0 <= x < len(ops) for x in v):
        raise ValueError(f"genome {list(v)} is not {len(EDGES)} op indices in 0..{len(ops) - 1}")
    parts, g = [], 0
    for j in range(1, N_NODES):
        parts.append("|" + "|".join(f"{ops[v[g + i]]}~{i}" for i in range(j)) + "|")
        g += j
    return "+".join(parts)


def cell_to_graph(genome: Genome, ops: tuple[str, ...] = OPS) -> nx.DiGraph:
    """The edge-to-node graph of a cell, as SEP crossover uses it (Qiu & Miikkulainen, 2023).

    Graph nodes 0..3 are the cell nodes, with ``role``/``op`` from ``CELL_NODES``; then one node
    per edge whose op is not ``none``, in arch-string order, with ``op`` the op name, wired
    ``from_node -> op node -> to_node``."""
    v = tuple(genome.values)
    if len(v) != len(EDGES) or any(not 0 <= x < len(ops) for x in v):
        raise ValueError(f"genome {list(v)} is not {len(EDGES)} op indices in 0..{len(ops) - 1}")
    g = nx.DiGraph()
    for n, (role, op) in enumerate(CELL_NODES):
        g.add_node(n, op=op, role=role)
    nid = len(CELL_NODES)
    for (to, frm), x in zip(EDGES, v):
        if ops[x] == "none":
            continue
        g.add_node(nid, op=ops[x])
        g.add_edge(frm, nid)
        g.add_edge(nid, to)
        nid += 1
    return g


def graph_to_cell(graph: nx.DiGraph, ops: tuple[str, ...] = OPS) -> Genome | None:
    """The genome of a cell graph (inverse of ``cell_to_graph``), or None if ``graph`` is not one:
    the four structural roles must each appear exactly once and be linked only through op
    nodes; every other node must carry a known op other than ``none``, have exactly one
    in-edge from a structural node ``i`` and one out-edge to a structural node ``j > i``, and
    no two op nodes may sit on the same ``(i, j)``. Pairs without an op node are ``none``
    (invalid when ``ops`` has no ``none``)."""
    cell_of: dict[object, int] = {}
    roles = {role: i for i, (role, _op) in enumerate(CELL_NODES)}
    for n, d in graph.nodes(data=True):
        r = d.get("role")
        if r is None:
            continue
        if r not in roles or roles[r] in cell_of.values():
            return None
        cell_of[n] = roles[r]
    if len(cell_of) != len(CELL_NODES):
        return None
    chosen: dict[tuple[int, int], int] = {}
    for n, d in graph.nodes(data=True):
        if n in cell_of:
            if any(s in cell_of for s in graph.successors(n)):
                return None  # structural nodes connect only through op nodes
            continue
        op = d.get("op")
        if op not in ops or op == "none":
            return None
        preds, succs = list(graph.predecessors(n)), list(graph.successors(n))
        if len(preds) != 1 or len(succs) != 1 or preds[0] not in cell_of or succs[0] not in cell_of:
            return None
        i, j = cell_of[preds[0]], cell_of[succs[0]]
        if not i < j or (j, i) in chosen:
            return None
        chosen[(j, i)] = ops.index(op)
    if len(chosen) < len(EDGES) and "none" not in ops:
        return None
    none = ops.index("none") if "none" in ops else -1
    return Genome(tuple(chosen.get(e, none) for e in EDGES), SPACE_NAME)


@lru_cache(maxsize=1 << 16)
def _cell_edit_path(a: tuple[int, ...], b: tuple[int, ...], ops: tuple[str, ...]) -> EditPath:
    """The (exact, cached) edit path between the graphs of two cells."""
    return edit_path(cell_to_graph(Genome(a, SPACE_NAME), ops), cell_to_graph(Genome(b, SPACE_NAME), ops))


class NB201Space(IntegerVectorSpace):
    """The 6-edge x 5-op NAS-Bench-201 cell space, with the same interface as ``ElasticSpace``.

    ``largest()`` is the all-``nor_conv_3x3`` cell (most parameters and FLOPs). ``smallest()``
    is the all-``skip_connect`` cell: it has no parameters or FLOPs in the cells, like the
    all-``none`` cell, but unlike that one it still passes the signal through (an all-``none``
    cell outputs zeros, so the network would be degenerate). If the ops tuple has no
    ``skip_connect`` it falls back to index 0.

    ``crossover`` picks the operator ``crossover()`` applies (kept as ``crossover_kind``):
    ``"uniform"`` (default) or ``"sep"`` (Shortest-Edit-Path crossover on the cell graphs,
    falling back to uniform crossover when SEP finds no valid child).
    """

    name = SPACE_NAME

    def __init__(self, ops: tuple[str, ...] = OPS, crossover: str = "uniform", channels: int = 16, cells: int = 5,
                 activation: str = "default"):
        self.channels, self.cells = channels, cells  # the trainable skeleton's size (space.nb201_*)
        self.activation = activation  # space.activation of the trainable skeleton
        self.ops = tuple(ops)
        if len(set(self.ops)) != len(self.ops) or not self.ops:
            raise ValueError(f"ops must be non-empty and distinct, got {self.ops}")
        if crossover not in CROSSOVERS:
            raise ValueError(f"unknown crossover {crossover!r}; expected one of {', '.join(CROSSOVERS)}")
        self.crossover_kind = crossover
        self.edges = EDGES

    # --- encoding -----------------------------------------------------------------
    @property
    def n_var(self) -> int:
        return len(EDGES)

    @property
    def upper_bounds(self) -> np.ndarray:
        """Inclusive upper bound of every gene (lower bounds are all 0)."""
        return np.full(self.n_var, len(self.ops) - 1, dtype=np.int64)

    def canonical(self, values) -> Genome:
        v = self.clip(values)
        return Genome(tuple(int(x) for x in v), self.name)

    def encode(self, genome: Genome) -> np.ndarray:
        """Surrogate features: the one-hot of each edge's op (``n_var * len(ops)``, edge-major)
        followed by the path encoding of BANANAS (White et al., 2021): one indicator per
        sequence of ops along each input-to-output path of the cell (paths through a
        ``none`` edge carry nothing). Paths capture how edges interact, which per-edge
        one-hots cannot."""
        self.validate(genome)
        k = len(self.ops)
        feats = np.zeros((self.n_var, k))
        feats[np.arange(self.n_var), np.asarray(genome.values)] = 1.0
        op = {edge: genome.values[n] for n, edge in enumerate(EDGES)}
        paths = []
        for path in _PATHS:
            block = np.zeros(k ** len(path))
            ops = [op[e] for e in path]
            if "none" not in (self.ops[o] for o in ops):
                block[int(np.ravel_multi_index(ops, (k,) * len(ops)))] = 1.0
            paths.append(block)
        return np.concatenate([feats.ravel(), *paths])

    # --- decoding to a pure description ------------------------------------------
    def decode(self, genome: Genome) -> list[tuple[int, int, str]]:
        """``(to_node, from_node, op_name)`` of every edge, in arch-string order."""
        self.validate(genome)
        return [(j, i, self.ops[v]) for (j, i), v in zip(EDGES, genome.values)]

    def describe(self, genome: Genome) -> str:
        self.validate(genome)
        return format_arch(genome, self.ops)

    def parse(self, arch: str) -> Genome:
        return parse_arch(arch, self.ops)

    # --- special members ------------------------------------------------------------
    def _uniform(self, op: str) -> Genome:
        return self.canonical(np.full(self.n_var, self.ops.index(op) if op in self.ops else 0))

    def largest(self) -> Genome:
        if "nor_conv_3x3" in self.ops:
            return self._uniform("nor_conv_3x3")
        return self.canonical(self.upper_bounds)

    def smallest(self) -> Genome:
        return self._uniform("skip_connect")

    # --- variation (all randomness from the caller's generator) -------------------
    def sample(self, rng: np.random.Generator) -> Genome:
        return self.canonical(rng.integers(0, self.upper_bounds + 1))

    def mutate(self, genome: Genome, rng: np.random.Generator, rate: float | None = None) -> Genome:
        """Each edge changes to a *different* op with probability ``rate`` (default 1/6);
        at least one edge always changes, so the child differs from the parent."""
        self.validate(genome)
        if len(self.ops) < 2:
            raise ValueError("cannot mutate in a space with a single op")
        rate = rate if rate is not None else 1.0 / self.n_var
        child = np.array(genome.values, dtype=np.int64)
        mask = rng.random(self.n_var) < rate
        if not mask.any():
            mask[rng.integers(self.n_var)] = True
        for g in np.flatnonzero(mask):
            # uniform over the other len(ops) - 1 choices
            new = int(rng.integers(len(self.ops) - 1))
            child[g] = new + (new >= child[g])
        return self.canonical(child)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        """Crossover of ``a`` and ``b`` by ``crossover_kind``: uniform (each edge from ``a`` or
        ``b`` with probability 1/2) or SEP (see ``sep_crossover``; uniform if it gives None)."""
        if self.crossover_kind == "sep":
            child = self.sep_crossover(a, b, rng)
            if child is not None:
                return child
        return self.uniform_crossover(a, b, rng)

    def uniform_crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        """Each edge's op from ``a`` or ``b`` with probability 1/2."""
        mask = rng.random(self.n_var) < 0.5
        return self.canonical(np.where(mask, np.array(a.values), np.array(b.values)))

    def sep_crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome | None:
        """SEP crossover of the two cell graphs (edit paths cached per parent pair), or None
        when it finds no valid cell distinct from both parents."""
        self.validate(a)
        self.validate(b)
        path = _cell_edit_path(a.values, b.values, self.ops)
        ops = self.ops
        child = sep_crossover(cell_to_graph(a, ops), cell_to_graph(b, ops), rng,
                              is_valid=lambda g: graph_to_cell(g, ops) is not None, path=path)
        return None if child is None else graph_to_cell(child, ops)

    def build(self, genome: Genome, input_shape: tuple[int, ...], num_classes: int):
        """A freshly initialised torch network of the cell (the NAS-Bench-201 skeleton)."""
        from nas.spaces.nb201_build import build_nb201

        return build_nb201(genome, input_shape[0], num_classes, self.channels, self.cells, activation=self.activation)

    def distance(self, a: Genome, b: Genome) -> float:
        """Number of edges whose ops differ (Hamming distance)."""
        return float(np.sum(np.asarray(a.values) != np.asarray(b.values)))

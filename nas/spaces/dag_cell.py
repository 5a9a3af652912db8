"""NAS-Bench-101-style DAG cell search space (Ying et al., 2019).

A cell is a directed acyclic graph of at most ``vertices`` (7) vertices: vertex 0 is the cell
input, the last vertex the cell output, and every vertex in between applies one operation
(``conv3x3-bn-relu``, ``conv1x1-bn-relu`` or ``maxpool3x3``) to the sum of its inputs. Edges
go from lower to higher vertices (an upper-triangular adjacency matrix), at most
``max_edges`` (9) of them. As in NAS-Bench-101, vertices that are not on a path from the input
to the output are pruned, and a cell whose output cannot be reached from its input is invalid.

**Genome.** The upper triangle of the adjacency matrix, row by row (21 bits for 7 vertices),
then the op index of each interior vertex (5 genes): a fixed-length integer vector, so
standard crossover acts on exactly the adjacency encoding NAS-Bench-101 uses. A genome is
always stored in *canonical form*: pruned, its interior vertices renumbered by the
lexicographically smallest encoding over every topological order (an exact canonical form:
at most 5! orders), used vertices first, unused slots empty with op 0. Two cells are the same
genome, with the same ``key()`` (the canonical hash), exactly when they are isomorphic with the
same ops, so isomorphic cells count as one architecture, as NAS-Bench-101 counts them.

**Operators** (all randomness from the caller's generator):

* ``mutate``: NAS-Bench-101's reference mutation: each of the 21 edge bits flips with
  probability ``rate / vertices`` and each interior op changes to another op with probability
  ``rate / interior``, redrawn until the child is valid and differs from its parent;
* ``standard_crossover``: each gene of the adjacency encoding from either parent with
  probability 1/2 (the competing-conventions baseline), redrawn until the child is valid and
  differs from both parents;
* ``sep_crossover``: Shortest-Edit-Path crossover (``nas.operators.sep``) on the cell graphs.

``crossover`` applies the one named by ``space.crossover`` (``uniform``: standard; ``sep``).
This module never builds torch modules until ``build`` is called.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import networkx as nx
import numpy as np

from nas.genome import Genome
from nas.spaces.cells import CellSpace

OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
SHORT = {"conv3x3-bn-relu": "conv3x3", "conv1x1-bn-relu": "conv1x1", "maxpool3x3": "maxpool3x3"}
SPACE_NAME = "dag_cell"
CROSSOVERS: tuple[str, ...] = ("uniform", "sep")
#: Tries before an operator gives up (counted, never timed).
MAX_TRIES = 1000


def triu_pairs(n: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, j) for i in range(n) for j in range(i + 1, n))


def prune(matrix: np.ndarray) -> np.ndarray | None:
    """Indices of the vertices on some input->output path (sorted), or None when the output
    cannot be reached from the input."""
    n = len(matrix)
    fwd = {0}
    for j in range(1, n):
        if any(matrix[i, j] and i in fwd for i in range(j)):
            fwd.add(j)
    if n - 1 not in fwd:
        return None
    back = {n - 1}
    for i in range(n - 2, -1, -1):
        if any(matrix[i, j] and j in back for j in range(i + 1, n)):
            back.add(i)
    return np.array(sorted(fwd & back))


@lru_cache(maxsize=1 << 17)
def _canonical(values: tuple[int, ...], n: int, max_edges: int) -> tuple[int, ...] | None:
    """The canonical vector of a raw one, or None when it is not a valid cell (see the module docstring)."""
    pairs = triu_pairs(n)
    bits, ops = values[:len(pairs)], values[len(pairs):]
    m = np.zeros((n, n), dtype=np.int64)
    for (i, j), b in zip(pairs, bits):
        m[i, j] = 1 if b else 0
    keep = prune(m)
    if keep is None:
        return None
    edges = [(a, b) for a in range(len(keep)) for b in range(a + 1, len(keep)) if m[keep[a], keep[b]]]
    if len(edges) > max_edges:
        return None
    k = len(keep) - 2
    inner = [(a - 1, b - 1) for a, b in edges if a > 0 and b <= k]  # edges between interior vertices
    inner_ops = [int(ops[v - 1]) for v in keep[1:-1]]
    index = {p: t for t, p in enumerate(pairs)}
    best: tuple[int, ...] | None = None
    for perm in itertools.permutations(range(k)):  # perm[t] = slot (1-based minus 1) of interior vertex t
        if any(perm[a] > perm[b] for a, b in inner):
            continue  # every edge must still go forward
        slot = [0, *(p + 1 for p in perm), n - 1]
        enc = [0] * (len(pairs) + n - 2)
        for a, b in edges:
            enc[index[slot[a], slot[b]]] = 1
        for t in range(k):
            enc[len(pairs) + perm[t]] = inner_ops[t]
        enc_t = tuple(enc)
        if best is None or enc_t < best:
            best = enc_t
    return best


class DAGCellSpace(CellSpace):
    """NAS-Bench-101-style cells (see the module docstring); ``channels``, ``stacks`` and
    ``cells_per_stack`` size the trainable stacked-cell network (``nas.spaces.dag_cell_build``)."""

    name = SPACE_NAME

    def __init__(self, vertices: int = 7, max_edges: int = 9, ops: tuple[str, ...] = OPS, crossover: str = "uniform",
                 channels: int = 16, stacks: int = 3, cells_per_stack: int = 1, activation: str = "default"):
        if not 3 <= vertices <= 8:
            raise ValueError(f"vertices must be in 3..8 (input, output and 1..6 op vertices), got {vertices}")
        if max_edges < 1:
            raise ValueError(f"max_edges must be >= 1, got {max_edges}")
        self.ops = tuple(ops)
        if len(self.ops) < 2 or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must be at least two distinct names, got {self.ops}")
        unknown = [o for o in self.ops if o not in SHORT]
        if unknown:
            raise ValueError(f"unknown op(s) {unknown}; known: {', '.join(SHORT)}")
        if crossover not in CROSSOVERS:
            raise ValueError(f"unknown crossover {crossover!r}; expected one of {', '.join(CROSSOVERS)}")
        self.vertices, self.max_edges, self.crossover_kind = vertices, max_edges, crossover
        self.channels, self.stacks, self.cells_per_stack, self.activation = channels, stacks, cells_per_stack, activation
        self.pairs = triu_pairs(vertices)
        self.n_edge_genes = len(self.pairs)

    # --- encoding -------------------------------------------------------------------
    @property
    def n_var(self) -> int:
        return self.n_edge_genes + self.vertices - 2

    @property
    def upper_bounds(self) -> np.ndarray:
        return np.array([1] * self.n_edge_genes + [len(self.ops) - 1] * (self.vertices - 2), dtype=np.int64)

    def canonical_or_none(self, values) -> Genome | None:
        """The canonical genome of any raw vector in bounds, or None when it is not a valid cell."""
        v = tuple(int(x) for x in np.asarray(values).ravel())
        if len(v) != self.n_var:
            raise ValueError(f"a {self.vertices}-vertex cell has {self.n_var} genes, got {len(v)}")
        if any(x < 0 or x > u for x, u in zip(v, self.upper_bounds)):
            raise ValueError(f"genes {list(v)} out of bounds 0..{list(self.upper_bounds)}")
        c = _canonical(v, self.vertices, self.max_edges)
        return None if c is None else Genome(c, self.name)

    def canonical(self, values) -> Genome:
        g = self.canonical_or_none(self.clip(values))
        if g is None:
            raise ValueError(f"{list(np.asarray(values).ravel())} is not a valid cell: the output must be reachable "
                             f"from the input with at most {self.max_edges} edges after pruning")
        return g

    def validate(self, genome: Genome) -> None:
        super().validate(genome)
        c = self.canonical_or_none(genome.values)
        if c is None:
            raise ValueError(f"genome {list(genome.values)} is not a valid {self.vertices}-vertex cell (no input->"
                             f"output path, or more than {self.max_edges} edges)")
        if c != genome:
            raise ValueError(f"genome {list(genome.values)} is not in canonical form ({list(c.values)})")

    def matrix(self, genome: Genome) -> tuple[np.ndarray, list[str]]:
        """The pruned adjacency matrix and op list (``input`` ... ``output``), NAS-Bench-101's ModelSpec form."""
        v = genome.values
        n = self.vertices
        m = np.zeros((n, n), dtype=np.int64)
        for (i, j), b in zip(self.pairs, v[:self.n_edge_genes]):
            m[i, j] = b
        keep = prune(m)
        assert keep is not None
        ops = ["input"] + [self.ops[v[self.n_edge_genes + t - 1]] for t in keep[1:-1]] + ["output"]
        return m[np.ix_(keep, keep)], ops

    def from_spec(self, matrix, ops) -> Genome:
        """The genome of a NAS-Bench-101 ModelSpec (adjacency matrix and op names, ``input`` first and
        ``output`` last, any numbering); ValueError naming what is wrong."""
        m = np.asarray(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or not 2 <= m.shape[0] <= self.vertices:
            raise ValueError(f"matrix must be square with 2..{self.vertices} vertices, got shape {m.shape}")
        if not np.isin(m, (0, 1)).all() or np.tril(m).any():
            raise ValueError("matrix must be upper-triangular with 0/1 entries")
        ops = list(ops)
        if len(ops) != len(m) or ops[0] != "input" or ops[-1] != "output":
            raise ValueError(f"ops must name every vertex, 'input' first and 'output' last, got {ops}")
        bad = [o for o in ops[1:-1] if o not in self.ops]
        if bad:
            raise ValueError(f"unknown op(s) {bad}; this space has {list(self.ops)}")
        k = len(m)
        slot = list(range(k - 1)) + [self.vertices - 1]  # pad unused slots before the output
        full = np.zeros((self.vertices, self.vertices), dtype=np.int64)
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    full[slot[i], slot[j]] = 1
        op_genes = [0] * (self.vertices - 2)
        for t in range(1, k - 1):
            op_genes[t - 1] = self.ops.index(ops[t])
        return self.canonical([full[i, j] for i, j in self.pairs] + op_genes)

    def encode(self, genome: Genome) -> np.ndarray:
        """Surrogate features: the edge bits, then the one-hot op of each used interior slot."""
        self.validate(genome)
        e = self.n_edge_genes
        used = self._used(genome)
        onehot = np.zeros((self.vertices - 2, len(self.ops)))
        for s in range(self.vertices - 2):
            if used[s + 1]:
                onehot[s, genome.values[e + s]] = 1.0
        return np.concatenate([np.asarray(genome.values[:e], dtype=float), onehot.ravel()])

    def _used(self, genome: Genome) -> list[bool]:
        v = genome.values
        used = [False] * self.vertices
        for (i, j), b in zip(self.pairs, v[:self.n_edge_genes]):
            if b:
                used[i] = used[j] = True
        return used

    # --- graphs and distance ---------------------------------------------------------
    def to_graph(self, genome: Genome) -> nx.DiGraph:
        """The pruned cell as a graph: vertex ids 0.., ``op`` on each; input and output carry
        ``role`` (so SEP never substitutes or deletes them)."""
        m, ops = self.matrix(genome)
        g = nx.DiGraph()
        for t, op in enumerate(ops):
            if op in ("input", "output"):
                g.add_node(t, op=op, role=op)
            else:
                g.add_node(t, op=op)
        for i, j in zip(*np.nonzero(m)):
            g.add_edge(int(i), int(j))
        return g

    def from_graph(self, graph: nx.DiGraph) -> Genome | None:
        """The genome of a cell graph (any node ids), or None when it is not a valid cell."""
        if not nx.is_directed_acyclic_graph(graph) or graph.number_of_nodes() > self.vertices:
            return None
        ins = [n for n, d in graph.nodes(data=True) if d.get("role") == "input"]
        outs = [n for n, d in graph.nodes(data=True) if d.get("role") == "output"]
        if len(ins) != 1 or len(outs) != 1:
            return None
        inner = [n for n in nx.topological_sort(graph) if n not in (ins[0], outs[0])]
        if any(graph.nodes[n].get("op") not in self.ops for n in inner):
            return None
        order = [ins[0], *inner, outs[0]]
        idx = {n: t for t, n in enumerate(order)}
        m = np.zeros((len(order), len(order)), dtype=np.int64)
        for u, v in graph.edges:
            if idx[u] >= idx[v]:
                return None
            m[idx[u], idx[v]] = 1
        try:
            return self.from_spec(m, ["input", *(graph.nodes[n]["op"] for n in inner), "output"])
        except ValueError:
            return None

    def distance(self, a: Genome, b: Genome) -> float:
        return self.ged(a, b)

    def describe(self, genome: Genome) -> str:
        """e.g. ``1:conv1x1(in) 2:conv3x3(in) 3:maxpool3x3(2) out(in,3)``: each vertex with its inputs."""
        m, ops = self.matrix(genome)
        parts = []
        for j in range(1, len(ops)):
            srcs = ",".join("in" if i == 0 else str(i) for i in range(j) if m[i, j])
            name = "out" if j == len(ops) - 1 else f"{j}:{SHORT[ops[j]]}"
            parts.append(f"{name}({srcs})")
        return " ".join(parts)

    # --- special members ---------------------------------------------------------------
    def largest(self) -> Genome:
        """A chain of every interior vertex at the first op (conv3x3: most parameters), with as
        many skip edges from the input as the edge limit allows."""
        n = self.vertices
        bits = {(i, i + 1) for i in range(n - 1)}
        for j in range(2, n):
            if len(bits) >= self.max_edges:
                break
            bits.add((0, j))
        return self.canonical([1 if p in bits else 0 for p in self.pairs] + [0] * (n - 2))

    def smallest(self) -> Genome:
        """The cell whose input feeds its output directly (no op vertex)."""
        return self.canonical([1 if p == (0, self.vertices - 1) else 0 for p in self.pairs] + [0] * (self.vertices - 2))

    # --- variation -------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Genome:
        """NAS-Bench-101's random cell: every upper-triangle bit on with probability 1/2, every
        op uniform, redrawn until valid."""
        for _ in range(MAX_TRIES):
            raw = np.concatenate([rng.integers(0, 2, self.n_edge_genes),
                                  rng.integers(0, len(self.ops), self.vertices - 2)])
            g = self.canonical_or_none(raw)
            if g is not None:
                return g
        raise RuntimeError(f"no valid cell in {MAX_TRIES} random draws (max_edges {self.max_edges} too small?)")

    def mutate(self, genome: Genome, rng: np.random.Generator, rate: float = 1.0) -> Genome:
        """NAS-Bench-101's mutation (see the module docstring); the child differs from the parent."""
        self.validate(genome)
        e, n = self.n_edge_genes, self.vertices
        for _ in range(MAX_TRIES):
            child = np.array(genome.values, dtype=np.int64)
            flip = rng.random(e) < rate / n
            child[:e] = np.where(flip, 1 - child[:e], child[:e])
            for s in range(n - 2):
                if rng.random() < rate / (n - 2):
                    new = int(rng.integers(len(self.ops) - 1))
                    child[e + s] = new + (new >= child[e + s])
            g = self.canonical_or_none(child)
            if g is not None and g != genome:
                return g
        raise RuntimeError(f"no valid mutant of {self.describe(genome)} in {MAX_TRIES} tries")

    def renumbered(self, genome: Genome, rng: np.random.Generator) -> np.ndarray:
        """A raw vector of the same cell under a random numbering: a random topological order of
        its interior vertices, placed in random slots, the unused slots given random ops (how
        cells are encoded when nothing canonicalises them, as in NAS-Bench-101's own specs)."""
        m, ops = self.matrix(genome)
        k = len(ops) - 2
        left, order = set(range(1, k + 1)), []
        while left:  # a random linear extension of the interior vertices
            ready = sorted(v for v in left if not any(m[u, v] for u in left))
            v = ready[int(rng.integers(len(ready)))]
            order.append(v)
            left.discard(v)
        slots = sorted(rng.choice(np.arange(1, self.vertices - 1), size=k, replace=False).tolist())
        where = {0: 0, len(ops) - 1: self.vertices - 1} | {v: slots[i] for i, v in enumerate(order)}
        full = np.zeros((self.vertices, self.vertices), dtype=np.int64)
        for i, j in zip(*np.nonzero(m)):
            full[where[int(i)], where[int(j)]] = 1
        op_genes = rng.integers(0, len(self.ops), self.vertices - 2)
        for v in order:
            op_genes[where[v] - 1] = self.ops.index(ops[v])
        return np.concatenate([[full[i, j] for i, j in self.pairs], op_genes]).astype(np.int64)

    def cache_key(self) -> tuple:
        return (self.vertices, self.max_edges, self.ops)

    def build(self, genome: Genome, input_shape: tuple[int, ...], num_classes: int):
        """A freshly initialised stacked-cell network (``nas.spaces.dag_cell_build``)."""
        from nas.spaces.dag_cell_build import build_dag_cell

        self.validate(genome)
        return build_dag_cell(self, genome, input_shape[0], num_classes)


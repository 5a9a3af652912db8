"""Shortest-Edit-Path (SEP) crossover for graph-encoded architectures.

Qiu & Miikkulainen (2023), "Shortest Edit Path Crossover: A Theory-driven Solution to the
Permutation Problem in Evolutionary Neural Architecture Search". Standard crossover on a
fixed encoding suffers from the *permutation problem*: the same network has many encodings,
so mixing genes position by position mixes unrelated parts of the two parents. SEP avoids it
by working in graph space: compute a shortest (minimum-cost) edit path that turns parent A
into a graph isomorphic to parent B, pick a random subset of about half of its elementary
edits, and apply those to A. The child then lies *between* the parents in graph edit
distance (``d(A, child) + d(child, B) <= d(A, B)``, each part strictly smaller when the path is
optimal and the child differs from both), whatever node numbering the parents use.

Graph convention (an interface other modules rely on):

* a parent is a ``networkx.DiGraph`` with integer node ids;
* every node has an ``"op"`` attribute (a string); substituting a node by one with the same
  op costs 0, by one with a different op costs 1; inserting or deleting a node costs 1;
* edges are unlabelled: edge substitution costs 0, insertion and deletion cost 1;
* a node with a ``"role"`` attribute (e.g. ``"input"``/``"output"``, or a fixed structural
  node of a cell) is never inserted, deleted or substituted by a node of another role: it can
  only be matched with the node of the same role in the other parent. Roles must therefore
  be unique within a graph and both parents must have the same set of roles;
* other node attributes (hyperparameters, an ``"attrs"`` dict, ...) travel with the node: an
  inserted node copies every attribute of its parent-B node, a substituted node takes parent
  B's op and all of its other attributes, every other node keeps parent A's. Substitutions
  between nodes with the same op but different attributes are edits of cost 0.

The edit path is exact (a depth-first branch and bound over node mappings, bounded above by
the greedy path below and cut off after ``max_expansions`` partial mappings) for graphs of at
most ``max_exact_nodes`` nodes; larger graphs, or searches cut off before they finish, use
the better of what the search found and a greedy node mapping: roles with roles, then the longest common subsequence of the op labels
of the remaining nodes in topological order, then the leftovers paired in topological order
as substitutions, the rest deleted or inserted, improved by a local search of at most
``local_moves`` tried moves. The edits are always derived from the node mapping, so their
total cost is that of the mapping. Every bound counts work, never time: the same parents
give the same path on any machine under any load, so a search that uses SEP replays exactly.

Subset rule: exactly ``k = round(fraction * n)`` of the ``n`` elementary edits, clipped to
``1..n-1`` (so a child is never a copy of either parent by construction), drawn uniformly
without replacement. Applying them to a copy of A goes: node insertions, edge deletions,
edge insertions, substitutions, node deletions. An inserted edge whose endpoint is an
inserted node that was not chosen is skipped; deleting a node removes its edges. Children
that fail the validity predicate or are isomorphic (op and role labels) to a parent are
rejected and another subset is drawn, up to ``max_tries`` times; then ``None`` (the caller
falls back to mutation). All randomness comes from the caller's ``numpy`` generator and
every iteration is over sorted ids, so a given generator state gives the same child.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import networkx as nx
import numpy as np

#: Cost standing for "forbidden" (role mismatch, inserting or deleting a role node).
FORBIDDEN = 1e6
#: Partial node mappings the exact search may expand before it settles for the best found.
MAX_EXPANSIONS = 50_000
#: Moves the greedy mapping's local search may try.
LOCAL_MOVES = 200_000

EDIT_KINDS: tuple[str, ...] = ("insert_node", "delete_edge", "insert_edge", "substitute_node", "delete_node")


class Edit(NamedTuple):
    """One elementary edit. ``item`` is, by ``kind``:

    * ``insert_node``: ``(b_node,)``, a parent-B node to add;
    * ``delete_edge``: ``(a_u, a_v)``, a parent-A edge;
    * ``insert_edge``: ``(b_u, b_v)``, a parent-B edge, its endpoints in parent-B ids (matched
      B nodes stand for their A partner, inserted ones for the new node);
    * ``substitute_node``: ``(a_node, b_node)``, A's node takes B's op and attributes;
    * ``delete_node``: ``(a_node,)``.
    """

    kind: str
    item: tuple[int, ...]


@dataclass(frozen=True)
class EditPath:
    """An edit path from parent A to parent B, derived from a node mapping.

    ``node_map`` holds the matched ``(a_node, b_node)`` pairs (substitutions of equal nodes
    included); ``edits`` lists the elementary edits in the order they are applied. ``cost`` is
    the edit cost under the module's cost model; ``exact`` is True when it is a proven
    minimum (the exact search finished within its counted bound)."""

    node_map: tuple[tuple[int, int], ...]
    node_insertions: tuple[int, ...]
    edge_insertions: tuple[tuple[int, int], ...]
    edge_deletions: tuple[tuple[int, int], ...]
    node_substitutions: tuple[tuple[int, int], ...]
    node_deletions: tuple[int, ...]
    cost: float
    exact: bool
    #: attributes of parent B's nodes and edges that the edits copy (so that applying a path
    #: needs parent A only)
    b_nodes: dict[int, dict] = field(default_factory=dict, repr=False, compare=False)
    b_edges: dict[tuple[int, int], dict] = field(default_factory=dict, repr=False, compare=False)

    @property
    def edits(self) -> tuple[Edit, ...]:
        """All elementary edits, in application order (node insertions, edge deletions, edge
        insertions, substitutions, node deletions), each group sorted."""
        return (tuple(Edit("insert_node", (v,)) for v in self.node_insertions)
                + tuple(Edit("delete_edge", e) for e in self.edge_deletions)
                + tuple(Edit("insert_edge", e) for e in self.edge_insertions)
                + tuple(Edit("substitute_node", p) for p in self.node_substitutions)
                + tuple(Edit("delete_node", (u,)) for u in self.node_deletions))

    def __len__(self) -> int:
        return (len(self.node_insertions) + len(self.edge_insertions) + len(self.edge_deletions)
                + len(self.node_substitutions) + len(self.node_deletions))


# --- cost model ----------------------------------------------------------------------------

def _role(data: dict) -> object:
    return data.get("role")


def node_subst_cost(da: dict, db: dict) -> float:
    """0 for equal ops, 1 for different ops, ``FORBIDDEN`` when the roles differ."""
    if _role(da) != _role(db):
        return FORBIDDEN
    return 0.0 if da.get("op") == db.get("op") else 1.0


def node_indel_cost(d: dict) -> float:
    """1, or ``FORBIDDEN`` for a node with a role."""
    return FORBIDDEN if _role(d) is not None else 1.0


def _edge_subst_cost(_ea: dict, _eb: dict) -> float:
    return 0.0


def _edge_indel_cost(_e: dict) -> float:
    return 1.0


# --- validation -----------------------------------------------------------------------------

def _check_graph(g: nx.DiGraph, name: str) -> dict[object, int]:
    """Role -> node of ``g``; ValueError if ``g`` breaks the graph convention."""
    if not isinstance(g, nx.DiGraph) or g.is_multigraph():
        raise ValueError(f"parent {name} must be a networkx.DiGraph, got {type(g).__name__}")
    roles: dict[object, int] = {}
    for n, d in g.nodes(data=True):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ValueError(f"parent {name}: node ids must be integers, got {n!r}")
        if "op" not in d:
            raise ValueError(f"parent {name}: node {n} has no 'op' attribute")
        r = _role(d)
        if r is not None:
            if r in roles:
                raise ValueError(f"parent {name}: role {r!r} appears on nodes {roles[r]} and {n}; "
                                 "roles must be unique within a graph")
            roles[r] = int(n)
    return roles


def _check_roles(ra: dict, rb: dict) -> None:
    if set(ra) != set(rb):
        only_a = sorted(map(repr, set(ra) - set(rb)))
        only_b = sorted(map(repr, set(rb) - set(ra)))
        raise ValueError("the parents must have the same roles (role nodes are never inserted or "
                         f"deleted): only in A: {only_a or 'none'}, only in B: {only_b or 'none'}")


# --- edit paths -----------------------------------------------------------------------------

def _path_from_mapping(a: nx.DiGraph, b: nx.DiGraph, mapping: dict[int, int], exact: bool) -> EditPath:
    """The edits and cost implied by the node mapping ``a_node -> b_node`` (a partial bijection:
    unmapped A nodes are deleted, unmapped B nodes inserted)."""
    inv = {v: u for u, v in mapping.items()}
    node_map = tuple(sorted(mapping.items()))
    node_insertions = tuple(sorted(v for v in b.nodes if v not in inv))
    node_deletions = tuple(sorted(u for u in a.nodes if u not in mapping))
    subs = []
    cost = float(len(node_insertions) + len(node_deletions))
    for u, v in node_map:
        da, db = a.nodes[u], b.nodes[v]
        if da != db:
            subs.append((u, v))
        if da.get("op") != db.get("op"):
            cost += 1.0
    edge_deletions = tuple(sorted(
        (u1, u2) for u1, u2 in a.edges
        if not (u1 in mapping and u2 in mapping and b.has_edge(mapping[u1], mapping[u2]))))
    edge_insertions = tuple(sorted(
        (v1, v2) for v1, v2 in b.edges
        if not (v1 in inv and v2 in inv and a.has_edge(inv[v1], inv[v2]))))
    cost += len(edge_deletions) + len(edge_insertions)
    b_nodes = {v: copy.deepcopy(dict(b.nodes[v])) for v in (*node_insertions, *(v for _, v in subs))}
    b_edges = {e: copy.deepcopy(dict(b.edges[e])) for e in edge_insertions}
    return EditPath(node_map, node_insertions, edge_insertions, edge_deletions, tuple(subs),
                    node_deletions, cost, exact, b_nodes, b_edges)


def _topo_order(g: nx.DiGraph) -> list[int]:
    if nx.is_directed_acyclic_graph(g):
        return list(nx.lexicographical_topological_sort(g))
    return sorted(g.nodes)


def _lcs_pairs(xs: list[int], ys: list[int], a: nx.DiGraph, b: nx.DiGraph) -> list[tuple[int, int]]:
    """Pairs of a longest common subsequence of the op labels of ``xs`` and ``ys``."""
    n, m = len(xs), len(ys)
    ox = [a.nodes[x]["op"] for x in xs]
    oy = [b.nodes[y]["op"] for y in ys]
    table = np.zeros((n + 1, m + 1), dtype=np.int32)
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i, j] = (table[i + 1, j + 1] + 1 if ox[i] == oy[j]
                           else max(table[i + 1, j], table[i, j + 1]))
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if ox[i] == oy[j]:
            pairs.append((xs[i], ys[j]))
            i, j = i + 1, j + 1
        elif table[i + 1, j] >= table[i, j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _lsap_pairs(xs: list[int], ys: list[int], a: nx.DiGraph, b: nx.DiGraph) -> list[tuple[int, int]]:
    """Bipartite GED approximation (Riesen & Bunke, 2009): an optimal assignment of the nodes
    under substitution costs ``op difference + (|in-degree diff| + |out-degree diff|) / 2``
    (and ``1 + degree / 2`` to delete or insert)."""
    from scipy.optimize import linear_sum_assignment

    n, m = len(xs), len(ys)
    if n == 0 or m == 0:
        return []
    big = 1e9
    c = np.zeros((n + m, n + m))
    ia = np.array([a.in_degree(x) for x in xs], dtype=float)
    oa = np.array([a.out_degree(x) for x in xs], dtype=float)
    ib = np.array([b.in_degree(y) for y in ys], dtype=float)
    ob = np.array([b.out_degree(y) for y in ys], dtype=float)
    opa = [a.nodes[x]["op"] for x in xs]
    opb = [b.nodes[y]["op"] for y in ys]
    c[:n, :m] = (np.array([[float(p != q) for q in opb] for p in opa])
                 + 0.5 * (np.abs(ia[:, None] - ib[None, :]) + np.abs(oa[:, None] - ob[None, :])))
    c[:n, m:] = big
    c[np.arange(n), m + np.arange(n)] = 1 + 0.5 * (ia + oa)
    c[n:, :m] = big
    c[n + np.arange(m), np.arange(m)] = 1 + 0.5 * (ib + ob)
    rows, cols = linear_sum_assignment(c)
    return [(xs[r], ys[k]) for r, k in zip(rows, cols) if r < n and k < m]


def mapping_cost(a: nx.DiGraph, b: nx.DiGraph, mapping: dict[int, int]) -> float:
    """Cost of the edit path implied by a node mapping ``a_node -> b_node``."""
    return _path_from_mapping(a, b, mapping, exact=False).cost


def _local_search(a: nx.DiGraph, b: nx.DiGraph, mapping: dict[int, int], movable: list[int],
                  free_b: list[int], max_moves: int) -> dict[int, int]:
    """First-improvement local search on the mapping of the ``movable`` A nodes: swap the
    images of two A nodes (an image may be "deleted"), or move an A node onto an unmatched B
    node (``free_b``), while the exact cost drops and fewer than ``max_moves`` moves were tried."""
    a_nodes = sorted(a.nodes)
    ai = {u: k for k, u in enumerate(a_nodes)}
    b_nodes = sorted(b.nodes)
    bi = {v: k for k, v in enumerate(b_nodes)}
    codes: dict[object, int] = {}
    op_a = [codes.setdefault(a.nodes[u]["op"], len(codes)) for u in a_nodes]
    op_b = [codes.setdefault(b.nodes[v]["op"], len(codes)) for v in b_nodes]
    phi = [-1] * len(a_nodes)
    for u, v in mapping.items():
        phi[ai[u]] = bi[v]
    b_edges = {(bi[u], bi[v]) for u, v in b.edges}
    inc: list[list[tuple[int, int]]] = [[] for _ in a_nodes]
    for u, v in a.edges:
        inc[ai[u]].append((ai[u], ai[v]))
        if u != v:
            inc[ai[v]].append((ai[u], ai[v]))

    def local(s: tuple[int, ...]) -> float:
        cost = 0.0
        for i in s:
            cost += 1.0 if phi[i] < 0 else float(op_a[i] != op_b[phi[i]])
        seen = set()
        for i in s:
            for e in inc[i]:
                if e in seen:
                    continue
                seen.add(e)
                x, y = phi[e[0]], phi[e[1]]
                cost -= 2.0 * (x >= 0 and y >= 0 and (x, y) in b_edges)
        return cost

    mov = [ai[u] for u in movable]
    free = [bi[v] for v in free_b]
    improved = True
    tried = 0
    while improved and tried < max_moves:
        improved = False
        for p_, i in enumerate(mov):
            tried += len(mov) - p_ - 1 + len(free)
            for j in mov[p_ + 1:]:
                if phi[i] == phi[j]:
                    continue  # both deleted
                before = local((i, j))
                phi[i], phi[j] = phi[j], phi[i]
                if local((i, j)) < before - 1e-9:
                    improved = True
                else:
                    phi[i], phi[j] = phi[j], phi[i]
            for f in range(len(free)):
                before = local((i,))
                old = phi[i]
                phi[i] = free[f]
                # a deleted node taking a free B node also saves that node's insertion
                if local((i,)) - (old < 0) < before - 1e-9:
                    improved = True
                    if old >= 0:
                        free[f] = old
                    else:  # a deleted node took a free B node: the free list shrinks
                        free.pop(f)
                    break
                phi[i] = old
            if tried >= max_moves:
                break
    return {a_nodes[k]: b_nodes[v] for k, v in enumerate(phi) if v >= 0}


def greedy_mapping(a: nx.DiGraph, b: nx.DiGraph, local_moves: int = LOCAL_MOVES) -> dict[int, int]:
    """Heuristic node mapping A -> B for graphs too large for the exact search.

    Role nodes go with their namesakes. The other nodes start from the cheaper of two
    mappings: (1) the longest common subsequence of op labels in (lexicographic) topological
    order, leftovers paired in that order as substitutions; (2) a bipartite assignment on op
    and degree differences (``_lsap_pairs``). Unpaired nodes are deleted / inserted. A local
    search over swaps then lowers the exact cost, trying at most ``local_moves`` moves (0: none)."""
    ra, rb = _check_graph(a, "A"), _check_graph(b, "B")
    _check_roles(ra, rb)
    fixed = {ra[r]: rb[r] for r in ra}
    xs = [u for u in _topo_order(a) if _role(a.nodes[u]) is None]
    ys = [v for v in _topo_order(b) if _role(b.nodes[v]) is None]
    pairs = _lcs_pairs(xs, ys, a, b)
    used_x = {u for u, _ in pairs}
    used_y = {v for _, v in pairs}
    lcs = dict(fixed)
    lcs.update(pairs)
    lcs.update(zip([u for u in xs if u not in used_x], [v for v in ys if v not in used_y]))
    bp = dict(fixed)
    bp.update(_lsap_pairs(xs, ys, a, b))
    mapping = min((lcs, bp), key=lambda mp: mapping_cost(a, b, mp))
    if local_moves > 0 and xs and ys:
        free_b = sorted(set(ys) - set(mapping.values()))
        mapping = _local_search(a, b, mapping, sorted(xs), free_b, local_moves)
    return mapping


def _exact_mapping(a: nx.DiGraph, b: nx.DiGraph, bound: float,
                   max_expansions: int) -> tuple[dict[int, int] | None, bool]:
    """Depth-first branch and bound for a node mapping of cost below ``bound``.

    Role nodes are matched with their namesakes up front; A's other nodes are then assigned in
    topological order, each to a free B node or to deletion, cheapest first. A partial mapping
    is cut when its cost (node edits of the assigned nodes, edge edits among them) plus a lower
    bound on the rest (nodes that must be inserted, deleted or relabelled, from the op counts)
    reaches the best cost known. Returns ``(mapping, finished)``: the cheapest mapping found
    under ``bound`` (None if none) and whether the search ran to completion within
    ``max_expansions`` partial mappings (then the result, or the bound, is optimal)."""
    from collections import Counter

    ra, rb = _role_nodes(a), _role_nodes(b)
    xs = [u for u in _topo_order(a) if _role(a.nodes[u]) is None]
    ys = sorted(v for v in b.nodes if _role(b.nodes[v]) is None)
    a_edges, b_edges = set(a.edges), set(b.edges)
    op_a = {u: a.nodes[u]["op"] for u in a.nodes}
    op_b = {v: b.nodes[v]["op"] for v in b.nodes}
    phi: dict[int, int | None] = {ra[r]: rb[r] for r in ra}
    assigned = list(phi)

    def edge_cost(u: int) -> float:
        """Edge edits between ``u`` (just assigned) and every assigned node, itself included."""
        c = 0
        pu = phi[u]
        for w in assigned:
            pw = phi[w]
            pairs = ((u, w, pu, pw), (w, u, pw, pu)) if w != u else ((u, u, pu, pu),)
            for x, y, px, py in pairs:
                c += ((x, y) in a_edges) != (px is not None and py is not None and (px, py) in b_edges)
        return float(c)

    cost0 = float(sum(op_a[u] != op_b[v] for u, v in phi.items()))
    done: list[int] = []
    for u in list(assigned):
        done.append(u)
        saved, assigned[:] = assigned[:], done
        cost0 += edge_cost(u)
        assigned[:] = saved
    rem_a, free_b = Counter(op_a[u] for u in xs), Counter(op_b[v] for v in ys)
    free = set(ys)
    best: list = [bound, None]
    expansions = [0]
    b_edge_list = sorted(b_edges)

    a_edge_list = sorted(a_edges)

    def lower_bound() -> float:
        """Node edits from the op counts, plus edge edits: each A edge not yet between two
        assigned nodes is kept (matched to one B edge not yet between two images) or deleted."""
        na, nb = sum(rem_a.values()), sum(free_b.values())
        nodes = max(na, nb) - sum(min(k, free_b[op]) for op, k in rem_a.items())
        done = set(assigned)
        image = {v for v in phi.values() if v is not None}
        ea = sum(1 for x, y in a_edge_list if x not in done or y not in done)
        eb = sum(1 for x, y in b_edge_list if x not in image or y not in image)
        return float(nodes + abs(ea - eb))

    def finish(cost: float) -> float:
        image = {v for v in phi.values() if v is not None}
        return cost + len(free) + sum(1 for v1, v2 in b_edge_list if v1 not in image or v2 not in image)

    def dfs(depth: int, cost: float) -> bool:
        """False when the expansion budget ran out."""
        if depth == len(xs):
            total = finish(cost)
            if total < best[0] - 1e-9:
                best[0], best[1] = total, {u: v for u, v in phi.items() if v is not None}
            return True
        u = xs[depth]
        rem_a[op_a[u]] -= 1
        assigned.append(u)
        options = []
        for v in [*sorted(free), None]:
            phi[u] = v
            options.append((float(v is None) + float(v is not None and op_a[u] != op_b[v]) + edge_cost(u),
                            v is None, -1 if v is None else v))
        ok = True
        for inc, _, v in sorted(options):
            expansions[0] += 1
            if expansions[0] > max_expansions:
                ok = False
                break
            v = None if v == -1 else v
            if v is not None:
                free.discard(v)
                free_b[op_b[v]] -= 1
            phi[u] = v
            if cost + inc + lower_bound() < best[0] - 1e-9:
                ok = dfs(depth + 1, cost + inc)
            if v is not None:
                free.add(v)
                free_b[op_b[v]] += 1
            if not ok:
                break
        phi.pop(u, None)
        assigned.pop()
        rem_a[op_a[u]] += 1
        return ok

    finished = dfs(0, cost0)
    return best[1], finished


def _role_nodes(g: nx.DiGraph) -> dict[object, int]:
    return {_role(d): n for n, d in g.nodes(data=True) if _role(d) is not None}


def edit_path(a: nx.DiGraph, b: nx.DiGraph, max_expansions: int = MAX_EXPANSIONS, max_exact_nodes: int = 12,
              local_moves: int = LOCAL_MOVES) -> EditPath:
    """A shortest edit path from ``a`` to ``b`` under the module's cost model.

    Exact (:func:`_exact_mapping`) when both graphs have at most ``max_exact_nodes`` nodes and
    the search finishes within ``max_expansions`` partial mappings (``exact=True``); otherwise
    the cheaper of the best path the search found and the greedy mapping's path
    (``exact=False``). Work is counted, not timed, so the result never depends on the machine."""
    if max_expansions < 1:
        raise ValueError(f"max_expansions must be >= 1, got {max_expansions}")
    if max_exact_nodes < 0:
        raise ValueError(f"max_exact_nodes must be >= 0, got {max_exact_nodes}")
    if local_moves < 0:
        raise ValueError(f"local_moves must be >= 0, got {local_moves}")
    greedy = _path_from_mapping(a, b, greedy_mapping(a, b, local_moves), exact=False)  # also validates
    if greedy.cost == 0:
        return replace(greedy, exact=True)
    if max(a.number_of_nodes(), b.number_of_nodes()) > max_exact_nodes:
        return greedy
    mapping, finished = _exact_mapping(a, b, greedy.cost, max_expansions)
    if mapping is None:
        # nothing under the greedy cost: if the search ran to completion the greedy path is
        # optimal, else it is only the best we know
        return replace(greedy, exact=finished)
    path = _path_from_mapping(a, b, mapping, exact=finished)
    if path.cost >= FORBIDDEN:  # cannot happen with equal role sets; be explicit if it does
        raise ValueError("no edit path respects the role constraints")
    return path


# --- applying edits -------------------------------------------------------------------------

def apply_edits(a: nx.DiGraph, path: EditPath, chosen: Iterable[int]) -> nx.DiGraph:
    """Apply the edits of ``path`` with indices ``chosen`` (into ``path.edits``) to a copy of
    ``a`` (the parent the path starts from); nodes are then relabelled ``0..n-1`` in order of
    their ids (A's ids, inserted nodes after them in order of their B ids). Inserted and
    substituted nodes, and inserted edges, take parent B's attributes stored in the path."""
    edits = path.edits
    idx = sorted({int(i) for i in chosen})
    if idx and (idx[0] < 0 or idx[-1] >= len(edits)):
        raise ValueError(f"edit indices must be in 0..{len(edits) - 1}, got {idx}")
    sel = [edits[i] for i in idx]
    child = a.copy()
    for n in child.nodes:
        child.nodes[n].clear()
        child.nodes[n].update(copy.deepcopy(dict(a.nodes[n])))
    inv = {v: u for u, v in path.node_map}
    next_id = (max(a.nodes) + 1) if a.number_of_nodes() else 0
    inserted: dict[int, int] = {}
    for e in sel:
        if e.kind == "insert_node":
            (v,) = e.item
            inserted[v] = next_id
            child.add_node(next_id, **copy.deepcopy(path.b_nodes[v]))
            next_id += 1
    for e in sel:
        if e.kind == "delete_edge" and child.has_edge(*e.item):
            child.remove_edge(*e.item)
    for e in sel:
        if e.kind == "insert_edge":
            v1, v2 = e.item
            u1 = inv.get(v1, inserted.get(v1))
            u2 = inv.get(v2, inserted.get(v2))
            if u1 is None or u2 is None:
                continue  # an endpoint's insertion was not chosen
            child.add_edge(u1, u2, **copy.deepcopy(path.b_edges[v1, v2]))
    for e in sel:
        if e.kind == "substitute_node":
            u, v = e.item
            child.nodes[u].clear()
            child.nodes[u].update(copy.deepcopy(path.b_nodes[v]))
    for e in sel:
        if e.kind == "delete_node":
            child.remove_node(e.item[0])
    return _relabel(child)


def _relabel(g: nx.DiGraph) -> nx.DiGraph:
    order = sorted(g.nodes)
    new = {n: i for i, n in enumerate(order)}
    out = nx.DiGraph()
    out.graph.update(copy.deepcopy(g.graph))
    for n in order:
        out.add_node(new[n], **g.nodes[n])
    for u, v in sorted(g.edges):
        out.add_edge(new[u], new[v], **g.edges[u, v])
    return out


# --- validity and crossover -----------------------------------------------------------------

def is_dag_io_connected(g: nx.DiGraph) -> bool:
    """Default validity: a DAG with exactly one ``role="input"`` and one ``role="output"`` node,
    every node on some path from the input to the output."""
    if g.number_of_nodes() == 0 or not nx.is_directed_acyclic_graph(g):
        return False
    ins = [n for n, d in g.nodes(data=True) if d.get("role") == "input"]
    outs = [n for n, d in g.nodes(data=True) if d.get("role") == "output"]
    if len(ins) != 1 or len(outs) != 1:
        return False
    reach = nx.descendants(g, ins[0]) | {ins[0]}
    back = nx.ancestors(g, outs[0]) | {outs[0]}
    return len(reach) == len(back) == g.number_of_nodes()


def _node_match(d1: dict, d2: dict) -> bool:
    return d1.get("op") == d2.get("op") and d1.get("role") == d2.get("role")


def is_isomorphic(g: nx.DiGraph, h: nx.DiGraph) -> bool:
    """Isomorphism respecting op and role labels (other attributes ignored)."""
    return nx.is_isomorphic(g, h, node_match=_node_match)


def subset_size(n: int, fraction: float) -> int:
    """How many of ``n`` edits a child takes: ``round(fraction * n)`` (halves up) in ``1..n-1``."""
    return int(min(max(int(np.floor(fraction * n + 0.5)), 1), n - 1))


def sep_crossover(a: nx.DiGraph, b: nx.DiGraph, rng: np.random.Generator,
                  is_valid: Callable[[nx.DiGraph], bool] = is_dag_io_connected, fraction: float = 0.5,
                  max_tries: int = 10, max_expansions: int = MAX_EXPANSIONS, max_exact_nodes: int = 12, *,
                  path: EditPath | None = None) -> nx.DiGraph | None:
    """SEP crossover of ``a`` and ``b``: a valid child between them, or None.

    The edit path is computed once (or taken from ``path``, e.g. a cached one for the same
    pair); then up to ``max_tries`` random subsets of ``subset_size(n, fraction)`` of its
    ``n`` edits are applied to ``a``, and the first child that ``is_valid`` and is isomorphic
    to neither parent is returned. None when the parents are isomorphic, when the path has
    fewer than two edits, or when no try succeeds."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    if path is None:
        path = edit_path(a, b, max_expansions=max_expansions, max_exact_nodes=max_exact_nodes)
    else:
        _check_roles(_check_graph(a, "A"), _check_graph(b, "B"))
    if is_isomorphic(a, b):
        return None
    n = len(path)
    if n < 2:
        return None
    k = subset_size(n, fraction)
    for _ in range(max_tries):
        chosen = np.sort(rng.choice(n, size=k, replace=False))
        child = apply_edits(a, path, chosen)
        if not is_valid(child):
            continue
        if is_isomorphic(child, a) or is_isomorphic(child, b):
            continue
        return child
    return None

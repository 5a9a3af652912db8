"""Shortest-Edit-Path crossover (nas.operators.sep) and its NAS-Bench-201 hook."""

from __future__ import annotations

import itertools
import time

import networkx as nx
import numpy as np
import pytest

from nas.genome import Genome
from nas.operators.sep import (
    EditPath,
    apply_edits,
    edit_path,
    greedy_mapping,
    is_dag_io_connected,
    is_isomorphic,
    mapping_cost,
    node_indel_cost,
    node_subst_cost,
    sep_crossover,
    subset_size,
)
from nas.spaces.nb201 import EDGES, OPS, NB201Space, cell_to_graph, graph_to_cell

MID_OPS = ("conv3", "conv5", "pool", "id")


# --- helpers ---------------------------------------------------------------------------------

def chain(*ops: str, ids: list[int] | None = None) -> nx.DiGraph:
    """input -> ops... -> output, with optional node ids."""
    labels = ["input", *ops, "output"]
    ids = ids or list(range(len(labels)))
    g = nx.DiGraph()
    for n, op in zip(ids, labels):
        g.add_node(n, op=op)
    g.nodes[ids[0]]["role"] = "input"
    g.nodes[ids[-1]]["role"] = "output"
    nx.add_path(g, ids)
    return g


def ged(a: nx.DiGraph, b: nx.DiGraph) -> float:
    """networkx's exact GED under the same cost model (edges: default 0 / 1 / 1)."""
    return nx.graph_edit_distance(a, b, node_subst_cost=node_subst_cost, node_del_cost=node_indel_cost,
                                  node_ins_cost=node_indel_cost)


def same_graph(g: nx.DiGraph, h: nx.DiGraph) -> bool:
    return (sorted(g.nodes(data=True)) == sorted(h.nodes(data=True))
            and sorted(g.edges) == sorted(h.edges))


def full_iso(g: nx.DiGraph, h: nx.DiGraph) -> bool:
    """Isomorphic with every node attribute equal."""
    return nx.is_isomorphic(g, h, node_match=lambda x, y: x == y)


def rand_dag(rng: np.random.Generator, n: int, p: float = 0.15) -> nx.DiGraph:
    """A DAG with input 0 and output n-1, every node on an input-output path."""
    g = nx.DiGraph()
    g.add_node(0, op="input", role="input")
    for i in range(1, n - 1):
        g.add_node(i, op=str(rng.choice(MID_OPS)), attrs={"width": int(rng.integers(8, 64))})
    g.add_node(n - 1, op="output", role="output")
    for j in range(1, n):
        g.add_edge(int(rng.integers(0, j)), j)
    for i in range(n - 1):
        g.add_edge(i, int(rng.integers(i + 1, n)))
        for j in range(i + 1, n):
            if rng.random() < p:
                g.add_edge(i, j)
    return g


def perturb(rng: np.random.Generator, g: nx.DiGraph, k: int = 4) -> nx.DiGraph:
    """``k`` random op changes / node insertions on an edge / forward edge additions, then a
    random permutation of the node ids (a relative of ``g`` in a population)."""
    h = g.copy()
    for _ in range(k):
        r = rng.integers(3)
        mids = sorted(n for n in h if "role" not in h.nodes[n])
        if r == 0:
            h.nodes[mids[rng.integers(len(mids))]]["op"] = str(rng.choice(MID_OPS))
        elif r == 1:
            u, v = sorted(h.edges)[rng.integers(h.number_of_edges())]
            new = max(h) + 1
            h.add_node(new, op=str(rng.choice(MID_OPS)))
            h.add_edge(u, new)
            h.add_edge(new, v)
        else:
            u = int(rng.choice(sorted(h)))
            down = sorted(nx.descendants(h, u))
            if down:
                h.add_edge(u, int(rng.choice(down)))
    perm = rng.permutation(h.number_of_nodes())
    return nx.relabel_nodes(h, {n: int(perm[i]) for i, n in enumerate(sorted(h))})


def genome(*ops: str) -> Genome:
    return Genome(tuple(OPS.index(o) for o in ops), "nb201")


def nb201_valid(g: nx.DiGraph) -> bool:
    return graph_to_cell(g) is not None


# --- edit paths ------------------------------------------------------------------------------

def test_known_small_edit_path():
    a = chain("conv3")
    b = chain("conv5")
    b.add_node(3, op="pool")  # ids: 0 input, 1 conv5, 2 output, 3 pool
    b.add_edge(0, 3)
    b.add_edge(3, 2)
    p = edit_path(a, b)
    # substitute conv3 -> conv5 (1), insert pool (1) and its two edges (2)
    assert isinstance(p, EditPath)
    assert p.cost == 4 == ged(a, b)
    assert p.exact
    assert p.node_insertions == (3,)
    assert p.node_substitutions == ((1, 1),)
    assert p.edge_insertions == ((0, 3), (3, 2))
    assert p.edge_deletions == () and p.node_deletions == ()
    assert len(p) == len(p.edits) == 4
    assert [e.kind for e in p.edits] == ["insert_node", "insert_edge", "insert_edge", "substitute_node"]


def test_edit_path_matches_networkx_ged_on_random_small_graphs():
    rng = np.random.default_rng(3)
    for _ in range(6):
        a, b = rand_dag(rng, int(rng.integers(4, 8))), rand_dag(rng, int(rng.integers(4, 8)))
        p = edit_path(a, b)
        assert p.exact
        assert p.cost == ged(a, b)
        # the heuristic is an upper bound
        assert mapping_cost(a, b, greedy_mapping(a, b)) >= p.cost


def test_role_nodes_are_only_matched_with_their_namesake():
    # A's input and output carry the op labels of B's middle nodes: matching by op alone
    # would be cheaper, roles forbid it
    a = chain("conv3", "pool")
    a.nodes[0]["op"] = "conv5"
    a.nodes[3]["op"] = "conv5"
    b = chain("conv5", "conv5", ids=[10, 11, 12, 13])
    p = edit_path(a, b)
    mapping = dict(p.node_map)
    assert mapping[0] == 10 and mapping[3] == 13
    roles = {n for n, d in a.nodes(data=True) if "role" in d}
    assert roles.isdisjoint(p.node_deletions)
    assert not {10, 13} & set(p.node_insertions)
    # a role node may take B's label only through its own namesake (op labels differ here)
    assert all(a.nodes[u].get("role") == b.nodes[v].get("role") for u, v in p.node_map)
    assert p.cost == ged(a, b)


def test_mismatched_roles_and_bad_graphs_raise():
    a = chain("conv3")
    b = chain("conv3")
    b.nodes[2]["role"] = "sink"
    with pytest.raises(ValueError, match="same roles"):
        edit_path(a, b)
    c = chain("conv3")
    c.nodes[1]["role"] = "input"
    with pytest.raises(ValueError, match="unique"):
        edit_path(a, c)
    with pytest.raises(ValueError, match="DiGraph"):
        edit_path(nx.Graph(a), a)
    d = chain("conv3")
    del d.nodes[1]["op"]
    with pytest.raises(ValueError, match="'op'"):
        edit_path(a, d)
    with pytest.raises(ValueError, match="fraction"):
        sep_crossover(a, b, np.random.default_rng(0), fraction=1.0)


def test_applying_all_edits_gives_b_and_none_gives_a():
    rng = np.random.default_rng(5)
    for n_a, n_b in [(5, 7), (7, 5), (6, 6)]:
        a = nx.relabel_nodes(rand_dag(rng, n_a), lambda n: 3 * n + 1)  # non-consecutive ids
        b = rand_dag(rng, n_b)
        p = edit_path(a, b)
        everything = apply_edits(a, p, range(len(p)))
        assert full_iso(everything, b)  # ops, roles and the copied attrs dicts
        assert sorted(everything.nodes) == list(range(n_b))
        nothing = apply_edits(a, p, [])
        assert full_iso(nothing, a) and sorted(nothing.nodes) == list(range(n_a))
    with pytest.raises(ValueError, match="indices"):
        apply_edits(a, p, [len(p)])


def test_substituted_and_inserted_nodes_copy_parent_b_attributes():
    a = chain("conv3")
    a.nodes[1]["attrs"] = {"width": 16}
    b = chain("conv5", "pool")
    b.nodes[1]["attrs"] = {"width": 32}
    b.nodes[2]["attrs"] = {"stride": 2}
    p = edit_path(a, b)
    child = apply_edits(a, p, range(len(p)))
    by_op = {d["op"]: d for _, d in child.nodes(data=True)}
    assert by_op["conv5"]["attrs"] == {"width": 32}
    assert by_op["pool"]["attrs"] == {"stride": 2}
    by_op["pool"]["attrs"]["stride"] = 9  # a copy, not an alias of parent B's dict
    assert b.nodes[2]["attrs"] == {"stride": 2}


def test_subset_size():
    assert subset_size(2, 0.5) == 1
    assert subset_size(3, 0.5) == 2  # halves round up
    assert subset_size(10, 0.5) == 5
    assert subset_size(10, 0.01) == 1 and subset_size(10, 0.99) == 9


def test_is_dag_io_connected():
    assert is_dag_io_connected(chain("conv3", "pool"))
    g = chain("conv3")
    g.add_node(9, op="pool")  # dangling
    assert not is_dag_io_connected(g)
    g.add_edge(0, 9)  # reachable from input, but no path to output
    assert not is_dag_io_connected(g)
    g.add_edge(9, 2)
    assert is_dag_io_connected(g)
    g.add_edge(2, 0)  # cycle
    assert not is_dag_io_connected(g)
    assert not is_dag_io_connected(nx.DiGraph())


# --- crossover -------------------------------------------------------------------------------

def test_sep_children_of_nb201_cells_lie_between_parents():
    rng = np.random.default_rng(0)
    space = NB201Space()
    children = 0
    for _ in range(12):
        a, b = space.sample(rng), space.sample(rng)
        ga, gb = cell_to_graph(a), cell_to_graph(b)
        d_ab = edit_path(ga, gb)
        assert d_ab.exact
        child = sep_crossover(ga, gb, rng, is_valid=nb201_valid)
        if child is None:
            continue
        children += 1
        assert nb201_valid(child)
        assert not is_isomorphic(child, ga) and not is_isomorphic(child, gb)
        d_ac, d_cb = edit_path(ga, child), edit_path(child, gb)
        assert d_ac.exact and d_cb.exact
        assert 0 < d_ac.cost < d_ab.cost and 0 < d_cb.cost < d_ab.cost
        # an optimal path through the child: the child lies on a shortest path from A to B
        assert d_ac.cost + d_cb.cost == d_ab.cost
        assert graph_to_cell(child) not in (a, b)
    assert children >= 9


def test_sep_is_deterministic_for_a_seed():
    rng = np.random.default_rng(11)
    a = rand_dag(rng, 9)
    b = perturb(rng, a, k=8)
    c1 = sep_crossover(a, b, np.random.default_rng(42))
    c2 = sep_crossover(a, b, np.random.default_rng(42))
    assert c1 is not None and same_graph(c1, c2)
    others = [sep_crossover(a, b, np.random.default_rng(s)) for s in range(8)]
    assert any(o is not None and not same_graph(o, c1) for o in others)
    space = NB201Space(crossover="sep")
    pa, pb = genome("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none"), \
        genome("none", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3")
    assert space.crossover(pa, pb, np.random.default_rng(7)) == space.crossover(pa, pb, np.random.default_rng(7))


def test_isomorphic_parents_give_none():
    rng = np.random.default_rng(2)
    a = rand_dag(rng, 9)
    perm = rng.permutation(9)
    b = nx.relabel_nodes(a, {n: int(perm[n]) + 100 for n in a})
    assert sep_crossover(a, b, np.random.default_rng(0)) is None
    assert sep_crossover(a, a, np.random.default_rng(0)) is None
    g = cell_to_graph(genome("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none"))
    assert sep_crossover(g, g.copy(), np.random.default_rng(0), is_valid=nb201_valid) is None


def test_fallback_on_large_dags_is_fast_and_gives_valid_children():
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    children = 0
    for _ in range(5):
        a = rand_dag(rng, 30)
        b = perturb(rng, a, k=4)
        p = edit_path(a, b)
        assert not p.exact  # above max_exact_nodes: heuristic mapping
        assert full_iso(apply_edits(a, p, range(len(p))), b)
        child = sep_crossover(a, b, rng, path=p)
        if child is not None:
            children += 1
            assert is_dag_io_connected(child)
            assert not is_isomorphic(child, a) and not is_isomorphic(child, b)
    # unrelated parents: any child returned is valid (few are: most halves break connectivity)
    for _ in range(3):
        child = sep_crossover(rand_dag(rng, 30), rand_dag(rng, 30), rng)
        assert child is None or is_dag_io_connected(child)
    assert children >= 4
    assert time.perf_counter() - t0 < 5.0


def test_heuristic_recovers_relabelled_small_edits():
    rng = np.random.default_rng(4)
    a = rand_dag(rng, 30)
    perm = rng.permutation(30)
    b = nx.relabel_nodes(a, {n: int(perm[n]) for n in a})
    b.nodes[int(perm[5])]["op"] = "new_op"
    p = edit_path(a, b)
    assert not p.exact and p.cost == 1  # found the single substitution despite the permutation


# --- NAS-Bench-201 ---------------------------------------------------------------------------

def test_cell_graph_structure():
    g = genome("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1")
    graph = cell_to_graph(g)
    roles = {d["role"]: n for n, d in graph.nodes(data=True) if "role" in d}
    assert roles == {"input": 0, "node1": 1, "node2": 2, "output": 3}
    op_nodes = [n for n in graph if n not in roles.values()]
    assert len(op_nodes) == 4  # two 'none' edges have no node
    for n in op_nodes:
        (i,), (j,) = list(graph.predecessors(n)), list(graph.successors(n))
        assert (j, i) in EDGES and OPS[g.values[EDGES.index((j, i))]] == graph.nodes[n]["op"]


def test_graph_to_cell_round_trips_every_genome():
    for values in itertools.product(range(len(OPS)), repeat=len(EDGES)):
        g = Genome(values, "nb201")
        assert graph_to_cell(cell_to_graph(g)) == g


def _op_node(graph: nx.DiGraph, frm: int, to: int) -> int:
    return next(n for n in graph if "role" not in graph.nodes[n]
                and list(graph.predecessors(n)) == [frm] and list(graph.successors(n)) == [to])


def test_invalid_cell_graphs_give_none():
    base = cell_to_graph(genome("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none"))
    assert graph_to_cell(base) is not None

    def variant(fn):
        g = base.copy()
        fn(g)
        return graph_to_cell(g)

    assert variant(lambda g: g.add_edge(0, 3)) is None                       # structural edge
    assert variant(lambda g: g.add_edge(2, _op_node(g, 0, 1))) is None       # two in-edges
    assert variant(lambda g: g.remove_edge(_op_node(g, 0, 1), 1)) is None    # no out-edge
    assert variant(lambda g: (g.add_node(50, op="nor_conv_1x1"),             # same pair twice
                              g.add_edge(0, 50), g.add_edge(50, 1))) is None
    assert variant(lambda g: (g.add_node(50, op="nor_conv_1x1"),             # backwards: 2 -> 1
                              g.add_edge(2, 50), g.add_edge(50, 1))) is None
    assert variant(lambda g: g.nodes[_op_node(g, 0, 1)].update(op="max_pool_3x3")) is None  # unknown op
    assert variant(lambda g: g.nodes[_op_node(g, 0, 1)].update(op="none")) is None
    assert variant(lambda g: g.remove_node(2)) is None                       # missing role
    assert variant(lambda g: g.nodes[2].update(role="node1")) is None        # duplicate role
    assert variant(lambda g: (g.add_node(50, op="skip_connect"),             # op node to op node
                              g.add_edge(_op_node(g, 0, 1), 50), g.add_edge(50, 3))) is None
    # dropping an op node entirely is a valid cell: that edge becomes 'none'
    assert variant(lambda g: g.remove_node(_op_node(g, 0, 1))) == genome(
        "none", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none")


def test_nb201_space_sep_crossover():
    space = NB201Space(crossover="sep")
    assert space.crossover_kind == "sep"
    rng = np.random.default_rng(9)
    from_sep = 0
    for _ in range(25):
        a, b = space.sample(rng), space.sample(rng)
        child = space.sep_crossover(a, b, rng)
        if child is not None:
            from_sep += 1
            space.validate(child)
            assert child not in (a, b)
        c = space.crossover(a, b, rng)
        space.validate(c)
    assert from_sep >= 20
    a = space.sample(rng)
    assert space.sep_crossover(a, a, rng) is None
    assert space.crossover(a, a, rng) == a  # falls back to uniform crossover


def test_uniform_crossover_unchanged():
    space = NB201Space()
    assert space.crossover_kind == "uniform"
    a = genome("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none")
    b = genome("none", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3")
    rng, ref = np.random.default_rng(123), np.random.default_rng(123)
    for _ in range(10):
        mask = ref.random(6) < 0.5
        expected = Genome(tuple(int(x) for x in np.where(mask, a.values, b.values)), "nb201")
        assert space.crossover(a, b, rng) == expected
    assert rng.random() == ref.random()  # same generator consumption


def test_bad_crossover_name_raises():
    with pytest.raises(ValueError, match="'blend'"):
        NB201Space(crossover="blend")


def test_edit_paths_count_work_never_time(monkeypatch):
    """The same parents give the same path however slow the machine: a clock that jumps an
    hour per reading (a wall-clock bound would cut every search off at once) changes nothing."""
    rng = np.random.default_rng(7)
    pairs = [(rand_dag(rng, 10), rand_dag(rng, 11)) for _ in range(3)]
    big = rand_dag(rng, 30)
    pairs.append((big, perturb(rng, big, k=4)))
    before = [edit_path(a, b) for a, b in pairs]
    ticks = iter(range(0, 10**9, 3600))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(ticks)))
    after = [edit_path(a, b) for a, b in pairs]
    assert [(p.node_map, p.cost, p.exact) for p in after] == [(p.node_map, p.cost, p.exact) for p in before]
    with pytest.raises(ValueError, match="max_expansions"):
        edit_path(*pairs[0], max_expansions=0)

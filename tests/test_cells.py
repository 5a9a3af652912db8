"""NAS-Bench-101-style DAG cells and NAS-Bench-NLP-style recurrent cells: validity after every
operator, pruning, canonical hashing, LSTM/GRU, graph edit distance and SEP children."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from nas.genome import Genome
from nas.operators.sep import edit_path
from nas.spaces.dag_cell import DAGCellSpace
from nas.spaces.rnn_cell import GRU, LSTM, RNNCellSpace

OPTIMUM = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "nb101_optimum.json"
# the NAS-Bench-101 optimum cell (also in ../shared/benchdata/nb101_optimum.json)
MATRIX = [[0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0],
          [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]]
OPS = ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu", "output"]


def exact_ged(space, a, b) -> float:
    p = edit_path(space.to_graph(a), space.to_graph(b), max_exact_nodes=64, max_expansions=10 ** 6)
    assert p.exact
    return p.cost


def test_optimum_matches_the_shared_spec():
    if OPTIMUM.is_file():
        doc = json.loads(OPTIMUM.read_text())
        assert doc["matrix"] == MATRIX and doc["ops"] == OPS


def test_dag_cell_round_trips_a_modelspec_and_describes_it():
    space = DAGCellSpace()
    g = space.from_spec(MATRIX, OPS)
    space.validate(g)
    m, ops = space.matrix(g)
    assert int(m.sum()) == 9 and sorted(ops) == sorted(OPS)
    assert nx.is_isomorphic(space.to_graph(g), space.to_graph(space.from_spec(m, ops)),
                            node_match=lambda a, b: a["op"] == b["op"])
    assert space.describe(g).count("conv3x3") == 3 and space.describe(g).endswith("out(in,5)")


def test_dag_canonical_hash_is_equal_for_isomorphic_cells_and_different_otherwise():
    space = DAGCellSpace()
    g = space.from_spec(MATRIX, OPS)
    m = np.array(MATRIX)
    # vertices 1 and 2 both read only the input: swapping their numbering is the same cell
    perm = [0, 2, 1, 3, 4, 5, 6]
    m2 = m[np.ix_(perm, perm)]
    assert not np.tril(m2).any()
    twin = space.from_spec(m2, [OPS[p] for p in perm])
    assert twin == g and twin.key() == g.key()
    # one op changed, or one edge removed: another architecture, another hash
    other = space.from_spec(MATRIX, [o if i != 1 else "conv3x3-bn-relu" for i, o in enumerate(OPS)])
    fewer = m.copy()
    fewer[0, 6] = 0
    third = space.from_spec(fewer, OPS)
    assert len({g.key(), other.key(), third.key()}) == 3
    # random relabellings of random cells keep the hash
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = space.sample(rng)
        cm, cops = space.matrix(c)
        k = len(cops)
        inner = list(range(1, k - 1))
        for _ in range(10):  # a random topological renumbering of the interior vertices
            order = list(rng.permutation(inner))
            pos = {v: i + 1 for i, v in enumerate(order)}
            if all(pos[i] < pos[j] for i in inner for j in inner if cm[i, j]):
                p = [0, *order, k - 1]
                assert space.from_spec(cm[np.ix_(p, p)], [cops[i] for i in p]) == c
                break


def test_dag_pruning_drops_vertices_off_every_input_output_path():
    space = DAGCellSpace()
    m = np.array(MATRIX)
    dangling = m.copy()
    dangling[:, 4] = 0  # vertex 4 loses its input: it and vertex 3 feed nothing reachable...
    dangling[2, 3] = 0
    dangling[2, 5] = 1  # ...and vertex 2 goes to 5 directly instead
    g = space.from_spec(dangling, OPS)
    m2, ops2 = space.matrix(g)
    assert len(ops2) == 5 and "maxpool3x3" not in ops2  # vertices 3 (maxpool) and 4 pruned
    with pytest.raises(ValueError, match="not a valid cell"):
        space.from_spec(np.zeros((7, 7), dtype=int), OPS)  # no input->output path
    with pytest.raises(ValueError, match="upper-triangular"):
        space.from_spec(np.tril(np.ones((7, 7), dtype=int)), OPS)
    with pytest.raises(ValueError, match="unknown op"):
        space.from_spec(MATRIX, ["input", "conv5x5", *OPS[2:]])
    too_many = np.triu(np.ones((7, 7), dtype=int), 1)
    with pytest.raises(ValueError, match="at most 9 edges"):
        space.from_spec(too_many, OPS)


@pytest.mark.parametrize("space", [DAGCellSpace(), RNNCellSpace(hidden=2), RNNCellSpace(hidden=1)],
                         ids=["dag", "lstm_space", "gru_space"])
def test_every_operator_gives_valid_canonical_cells(space):
    rng = np.random.default_rng(1)
    pop = [space.sample(rng) for _ in range(12)] + [space.largest(), space.smallest()]
    for _ in range(3):
        nxt = []
        for i, a in enumerate(pop):
            b = pop[(i + 1) % len(pop)]
            for child in (space.mutate(a, rng), space.standard_crossover(a, b, rng), space.sep_crossover(a, b, rng),
                          space.crossover(a, b, rng)):
                if child is None:
                    continue
                space.validate(child)
                assert child == space.canonical(child.values)
                assert space.from_graph(space.to_graph(child)) == child
                nxt.append(child)
        assert all(m != a for a, m in zip(pop, (space.mutate(a, np.random.default_rng(2)) for a in pop)))
        pop = nxt[:14]


@pytest.mark.parametrize("space", [DAGCellSpace(), RNNCellSpace(hidden=1)], ids=["dag", "gru_space"])
def test_sep_children_lie_on_a_shortest_edit_path_between_their_parents(space):
    rng = np.random.default_rng(3)
    checked = 0
    while checked < 8:
        a = space.sample(rng)
        b = a
        for _ in range(3):
            b = space.mutate(b, rng)
        child = space.sep_crossover(a, b, rng)
        if child is None:
            continue
        d_ab, d_ac, d_cb = exact_ged(space, a, b), exact_ged(space, a, child), exact_ged(space, child, b)
        assert child not in (a, b)
        assert d_ac + d_cb <= d_ab + 1e-9 and 0 < d_ac < d_ab and 0 < d_cb < d_ab
        checked += 1


def test_ged_on_small_known_pairs():
    space = DAGCellSpace()
    g = space.from_spec(MATRIX, OPS)
    assert space.ged(g, g) == 0
    op = space.from_spec(MATRIX, [o if i != 3 else "conv1x1-bn-relu" for i, o in enumerate(OPS)])
    assert space.ged(g, op) == 1  # one op substituted
    m = np.array(MATRIX)
    m[0, 6] = 0
    assert space.ged(g, space.from_spec(m, OPS)) == 1  # one edge deleted
    # the direct input->output cell against the optimum: 5 vertices and 9 - 1 edges inserted
    assert space.ged(space.smallest(), g) == 5 + 8
    assert space.ged(g, space.smallest()) == space.ged(space.smallest(), g)


def test_lstm_and_gru_are_expressible_and_compute_what_they_should():
    lstm_space, gru_space = RNNCellSpace(hidden=2), RNNCellSpace(hidden=1)
    lstm, gru = lstm_space.from_recipe(LSTM), gru_space.from_recipe(GRU)
    assert lstm == lstm_space.largest() and gru == gru_space.largest()
    assert lstm_space.n_used(lstm) == 13 and gru_space.n_used(gru) == 8
    # the same cell written with other node names and in another order is the same genome
    new = {n: (n if n.startswith("h_new") else f"node{k}") for k, n in enumerate(LSTM)}
    renamed = {new[n]: (op, tuple(new.get(i, i) for i in reversed(ins))) for n, (op, ins) in reversed(LSTM.items())}
    assert lstm_space.from_recipe(renamed) == lstm
    # a different cell (the output gate's activation changed) is another genome
    alt = dict(LSTM, o_act=("activation_sigm", ("o",)))
    assert lstm_space.from_recipe(alt) != lstm
    # the built GRU cell computes h' = z * h + (1 - z) * tanh(W x + U (r * h))
    torch.manual_seed(0)
    net = gru_space.build(gru, (1, 3, 4), 5)
    cell = net.cell
    x, h = torch.randn(2, net.size), torch.randn(2, net.size)
    (h_new,) = cell(x, [h])
    # recompute from the cell's own linear layers, in canonical node order
    nodes = gru_space.nodes(gru)
    vals = [x, h]
    for k, (op, rd) in enumerate(nodes):
        a = [vals[r] for r in rd]
        if op == "linear":
            v = sum(lin(t) for lin, t in zip(cell.linears[str(k)], a))
        elif op == "blend":
            v = a[0] * a[1] + (1 - a[0]) * a[2]
        elif op == "elementwise_prod":
            v = a[0] * a[1]
        elif op == "activation_sigm":
            v = torch.sigmoid(a[0])
        else:
            v = torch.tanh(a[0])
        vals.append(v)
    assert torch.allclose(h_new, vals[-1])
    blend = [op for op, _ in nodes].index("blend")
    assert nodes[blend][1][1] == 1  # the blend mixes the previous state h with the candidate
    assert net(torch.randn(4, 1, 3, 4)).shape == (4, 5)


def test_recurrent_cells_must_use_the_input_and_every_state():
    space = RNNCellSpace(hidden=2)
    with pytest.raises(ValueError, match="not a valid cell"):
        space.from_recipe({"h_new_0": ("linear", ("x", "h_prev_0")), "h_new_1": ("activation_tanh", ("h_new_0",))})
    with pytest.raises(ValueError, match="no output node h_new_1"):
        space.from_recipe({"h_new_0": ("linear", ("x", "h_prev_0", "h_prev_1"))})
    with pytest.raises(ValueError, match="cycle or unknown inputs"):
        space.from_recipe({"h_new_0": ("linear", ("x", "nowhere"))})
    g = space.from_recipe({"a": ("linear", ("x", "h_prev_0", "h_prev_1")), "h_new_0": ("activation_tanh", ("a",)),
                           "h_new_1": ("elementwise_prod", ("a", "h_new_0")), "unused": ("activation_sigm", ("a",))})
    assert space.n_used(g) == 3  # the node no output reads is pruned
    with pytest.raises(ValueError, match="canonical form"):
        space.validate(Genome(tuple(np.roll(g.values, 4)), space.name))


def test_dag_and_recurrent_spaces_from_params():
    from nas.config import SpaceConfig
    from nas.spaces.registry import from_config

    d = from_config(SpaceConfig(kind="dag_cell", crossover="sep", dag_cell={"max_edges": 7, "channels": 4}))
    assert isinstance(d, DAGCellSpace) and d.max_edges == 7 and d.crossover_kind == "sep" and d.channels == 4
    r = from_config(SpaceConfig(kind="rnn_cell", rnn_cell={"hidden": 1, "nodes": 9, "hidden_size": 8}))
    assert isinstance(r, RNNCellSpace) and r.hidden == 1 and r.slots == 9
    assert sum(p.numel() for p in d.build(d.largest(), (1, 8, 8), 3).parameters()) > \
        sum(p.numel() for p in d.build(d.smallest(), (1, 8, 8), 3).parameters())


def test_a_renumbered_cell_is_the_same_cell_and_renumbered_crossover_gives_valid_cells():
    space = DAGCellSpace()
    rng = np.random.default_rng(4)
    cells = [space.sample(rng) for _ in range(10)]
    for c in cells:
        raws = {tuple(space.renumbered(c, rng)) for _ in range(6)}
        assert all(space.canonical(r) == c for r in raws)
    assert any(len({tuple(space.renumbered(c, rng)) for _ in range(6)}) > 1 for c in cells)  # numberings differ
    for a, b in zip(cells, cells[1:]):
        child = space.standard_crossover(a, b, rng, renumber=True)
        if child is not None:
            space.validate(child)
            assert child not in (a, b)

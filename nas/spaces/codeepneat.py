"""CoDeepNEAT search space (Miikkulainen et al., 2017): blueprints of modules of layers.

Two kinds of graph are evolved, each a DAG with one ``input`` and one ``output`` node:

* a **module** is a small DAG of layers (``conv``, ``dense``, ``maxpool``, ``avgpool``,
  ``dropout``, ``batchnorm``, ``activation``), each with its own hyperparameters;
* a **blueprint** is a DAG whose inner nodes each name a module *species*.

A network is assembled by filling every blueprint node with one module of its species (the
same module wherever that species recurs in the blueprint). The assembled network is the
genome that is evaluated: a :class:`~nas.genome.Genome` whose ``spec`` is the canonical JSON
of ``{"blueprint": graph, "modules": [graph, ...]}``, blueprint nodes naming modules by
their index in that list. Species numbers do not appear in it, so the same architecture
assembled twice has the same key and is not evaluated twice.

Graphs are handled as ``networkx.DiGraph`` with, on every node, ``op`` (the layer type, or
``module:<species>`` in a blueprint, the label Shortest-Edit-Path crossover compares),
``role`` on the input/output nodes (never substituted, inserted or deleted), and ``attrs``
(the full node description: layer type and hyperparameters). This module never builds torch
modules (see :mod:`nas.spaces.codeepneat_build`); every random choice takes the caller's
generator.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import networkx as nx
import numpy as np

from nas.genome import Genome, canonical_json

SPACE_NAME = "codeepneat"
LAYER_OPS = ("conv", "dense", "maxpool", "avgpool", "dropout", "batchnorm", "activation")
ACTIVATIONS = ("relu", "elu", "tanh", "gelu", "silu", "leaky_relu", "sigmoid", "identity")
IO = ("input", "output")


class Vocabulary:
    """The layer choices of a space (from ``space.codeepneat`` in params)."""

    def __init__(self, cfg=None, extra_activations: tuple[str, ...] = ()):
        from nas.config import CoDeepNEATSpaceConfig

        cfg = cfg or CoDeepNEATSpaceConfig()
        self.layers = tuple(cfg.layers)
        self.conv_channels = tuple(cfg.conv_channels)
        self.conv_kernels = tuple(cfg.conv_kernels)
        self.dense_units = tuple(cfg.dense_units)
        self.dropout_rates = tuple(cfg.dropout_rates)
        self.activations = tuple(cfg.activations) + tuple(a for a in extra_activations if a not in cfg.activations)
        self.max_module_layers = cfg.max_module_layers
        self.max_blueprint_modules = cfg.max_blueprint_modules

    def choices(self, op: str) -> dict[str, tuple]:
        """Hyperparameters of a layer type and their allowed values."""
        return {"conv": {"channels": self.conv_channels, "kernel": self.conv_kernels, "act": self.activations},
                "dense": {"units": self.dense_units, "act": self.activations},
                "dropout": {"rate": self.dropout_rates},
                "activation": {"act": self.activations}}.get(op, {})

    def random_layer(self, rng: np.random.Generator, op: str | None = None) -> dict:
        op = op or self.layers[int(rng.integers(len(self.layers)))]
        layer: dict[str, Any] = {"op": op}
        for name, values in self.choices(op).items():
            layer[name] = values[int(rng.integers(len(values)))]
        return layer


# ------------------------------------------------------------------------ graph helpers


def layer_text(node: dict) -> str:
    """Short name of a layer: ``conv16k3/relu``, ``dense64/tanh``, ``dropout0.25``, ``gelu``, ``maxpool``."""
    op = node["op"]
    if op == "conv":
        return f"conv{node['channels']}k{node['kernel']}/{node['act']}"
    if op == "dense":
        return f"dense{node['units']}/{node['act']}"
    if op == "dropout":
        return f"dropout{node['rate']:g}"
    if op == "activation":
        return node["act"]
    return op


def new_graph() -> nx.DiGraph:
    """``input -> output`` with nothing between (ids 0 and 1)."""
    g = nx.DiGraph()
    g.add_node(0, op="input", role="input", attrs={"op": "input"})
    g.add_node(1, op="output", role="output", attrs={"op": "output"})
    return g


def _label(attrs: dict) -> str:
    if attrs["op"] == "module":  # a species in an evolving blueprint, a module index in a network
        return f"module:{attrs.get('species', attrs.get('module'))}"
    return attrs["op"]


def _role(attrs: dict) -> str | None:
    """``input``/``output`` (``input3``/``output3`` for task 3 of a multi-task routing graph)."""
    if attrs["op"] not in IO:
        return None
    return attrs["op"] + (str(attrs["task"]) if "task" in attrs else "")


def add_node(g: nx.DiGraph, attrs: dict) -> int:
    nid = max(g.nodes, default=-1) + 1
    role = _role(attrs)
    g.add_node(nid, op=_label(attrs), attrs=dict(attrs), **({"role": role} if role else {}))
    return nid


def slot_text(node: dict) -> str:
    """A blueprint or route node: ``m<index>`` for a module, else ``input``/``output``."""
    return f"m{node['module']}" if node["op"] == "module" else node["op"]


def graph_text(d: dict, name) -> str:
    """``0:input 1:... | 0->1 ...`` for a graph in plain form, nodes named by ``name(node)``."""
    return " ".join(f"{k}:{name(n)}" for k, n in enumerate(d["nodes"])) + " | " + \
        " ".join(f"{u}->{v}" for u, v in d["edges"])


def chain_graph(nodes: list[dict]) -> nx.DiGraph:
    """``input -> nodes[0] -> ... -> output``."""
    g = new_graph()
    prev = 0
    for attrs in nodes:
        n = add_node(g, attrs)
        g.add_edge(prev, n)
        prev = n
    g.add_edge(prev, 1)
    return g


def io_nodes(g: nx.DiGraph) -> tuple[int, int]:
    ins = [n for n, r in g.nodes(data="role") if r == "input"]
    outs = [n for n, r in g.nodes(data="role") if r == "output"]
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(f"a graph needs one input and one output node, got {len(ins)} and {len(outs)}")
    return ins[0], outs[0]


def is_valid(g: nx.DiGraph, max_inner: int | None = None) -> bool:
    """A DAG with one input and one output, every node on some input-to-output path,
    at least one inner node, and at most ``max_inner`` of them."""
    try:
        i, o = io_nodes(g)
    except ValueError:
        return False
    inner = g.number_of_nodes() - 2
    if inner < 1 or (max_inner is not None and inner > max_inner) or not nx.is_directed_acyclic_graph(g):
        return False
    reach = nx.descendants(g, i) | {i}
    back = nx.ancestors(g, o) | {o}
    return set(g.nodes) <= (reach & back)


def _order(g: nx.DiGraph) -> list[int]:
    """Topological order, ties broken by the node's description (so it does not depend on ids
    when it can help it)."""
    return list(nx.lexicographical_topological_sort(g, key=lambda n: canonical_json(g.nodes[n]["attrs"])))


def to_dict(g: nx.DiGraph) -> dict:
    """The plain, canonical form: nodes renumbered in topological order."""
    order = _order(g)
    idx = {n: k for k, n in enumerate(order)}
    return {"nodes": [dict(g.nodes[n]["attrs"]) for n in order],
            "edges": sorted([idx[u], idx[v]] for u, v in g.edges)}


def from_dict(d: dict) -> nx.DiGraph:
    if not isinstance(d, dict) or not isinstance(d.get("nodes"), list) or not isinstance(d.get("edges"), list):
        raise ValueError("a graph must be a mapping with lists 'nodes' and 'edges'")
    g = nx.DiGraph()
    for k, attrs in enumerate(d["nodes"]):
        if not isinstance(attrs, dict) or "op" not in attrs:
            raise ValueError(f"graph node {k} must be a mapping with an 'op'")
        role = _role(attrs)
        g.add_node(k, op=_label(attrs), attrs=dict(attrs), **({"role": role} if role else {}))
    for e in d["edges"]:
        if not (isinstance(e, list) and len(e) == 2 and all(x in g for x in e)):
            raise ValueError(f"graph edge {e!r} does not join two listed nodes")
        g.add_edge(int(e[0]), int(e[1]))
    return g


def inner_nodes(g: nx.DiGraph) -> list[int]:
    return sorted(n for n, r in g.nodes(data="role") if r is None)


# -------------------------------------------------------------------- structural mutation


def _split_edge(g: nx.DiGraph, rng: np.random.Generator, attrs: dict) -> bool:
    edges = sorted(g.edges)
    u, v = edges[int(rng.integers(len(edges)))]
    w = add_node(g, attrs)
    g.remove_edge(u, v)
    g.add_edge(u, w)
    g.add_edge(w, v)
    return True


def _remove_node(g: nx.DiGraph, rng: np.random.Generator) -> bool:
    inner = inner_nodes(g)
    if len(inner) < 2:
        return False
    w = inner[int(rng.integers(len(inner)))]
    preds, succs = list(g.predecessors(w)), list(g.successors(w))
    g.remove_node(w)
    g.add_edges_from((p, s) for p in preds for s in succs)
    return True


def _add_edge(g: nx.DiGraph, rng: np.random.Generator) -> bool:
    order = list(nx.topological_sort(g))
    pos = {n: k for k, n in enumerate(order)}
    cands = sorted((u, v) for u in g for v in g if pos[u] < pos[v] and not g.has_edge(u, v)
                   and g.nodes[u].get("role") != "output" and g.nodes[v].get("role") != "input")
    if not cands:
        return False
    g.add_edge(*cands[int(rng.integers(len(cands)))])
    return True


def _remove_edge(g: nx.DiGraph, rng: np.random.Generator) -> bool:
    edges = sorted(g.edges)
    for k in rng.permutation(len(edges)):
        u, v = edges[int(k)]
        g.remove_edge(u, v)
        if is_valid(g):
            return True
        g.add_edge(u, v)
    return False


def _relabel(g: nx.DiGraph, n: int, attrs: dict) -> None:
    g.nodes[n]["attrs"] = dict(attrs)
    g.nodes[n]["op"] = _label(attrs)


# ------------------------------------------------------------------------------ the space


class CoDeepNEATSpace:
    """Operators on modules, blueprints and assembled networks (see the module docstring)."""

    name = SPACE_NAME

    def __init__(self, cfg=None, activation: str = "default"):
        """``activation``: ``space.activation``; anything but ``default`` becomes one more choice
        of every layer's activation, stored in the genome as its expression (e.g. ``x * sigmoid(x)``),
        so the genome builds on its own."""
        extra: tuple[str, ...] = ()
        if activation != "default":
            from nas.meta.components import resolve
            from nas.meta.expr import to_text

            extra = (to_text(resolve("activation", activation)["tree"]),)
        self.vocab = Vocabulary(cfg, extra)

    def valid_module(self, g: nx.DiGraph) -> bool:
        return is_valid(g, self.vocab.max_module_layers)

    def valid_blueprint(self, g: nx.DiGraph) -> bool:
        return is_valid(g, self.vocab.max_blueprint_modules)

    def crossover_module(self, a: nx.DiGraph, b: nx.DiGraph, rng: np.random.Generator) -> nx.DiGraph | None:
        """Shortest-Edit-Path crossover (None when no valid child differs from both parents)."""
        from nas.operators.sep import sep_crossover

        return sep_crossover(a, b, rng, is_valid=self.valid_module)

    def crossover_blueprint(self, a: nx.DiGraph, b: nx.DiGraph, rng: np.random.Generator) -> nx.DiGraph | None:
        from nas.operators.sep import sep_crossover

        return sep_crossover(a, b, rng, is_valid=self.valid_blueprint)

    # --- modules -----------------------------------------------------------------
    def minimal_module(self, rng: np.random.Generator) -> nx.DiGraph:
        """Start minimal: one layer (a convolution when allowed) between input and output."""
        g = new_graph()
        op = "conv" if "conv" in self.vocab.layers else None
        w = add_node(g, self.vocab.random_layer(rng, op))
        g.add_edges_from([(0, w), (w, 1)])
        return g

    def mutate_module(self, g: nx.DiGraph, rng: np.random.Generator, weights: dict[str, float]) -> nx.DiGraph:
        """One structural or parameter mutation, chosen by ``weights`` over ``add_layer``,
        ``remove_layer``, ``add_edge``, ``remove_edge``, ``change_layer``, ``mutate_param``;
        always returns a valid graph different from ``g`` (or a copy of ``g`` if nothing applies)."""
        v = self.vocab

        def add_layer(c):
            return c.number_of_nodes() - 2 < v.max_module_layers and _split_edge(c, rng, v.random_layer(rng))

        def change_layer(c):
            n = inner_nodes(c)[int(rng.integers(len(inner_nodes(c))))]
            others = [op for op in v.layers if op != c.nodes[n]["attrs"]["op"]]
            if not others:
                return False
            _relabel(c, n, v.random_layer(rng, others[int(rng.integers(len(others)))]))
            return True

        def mutate_param(c):
            cands = [(n, k) for n in inner_nodes(c) for k, vals in v.choices(c.nodes[n]["attrs"]["op"]).items()
                     if len(vals) > 1]
            if not cands:
                return False
            n, k = cands[int(rng.integers(len(cands)))]
            attrs = dict(c.nodes[n]["attrs"])
            vals = v.choices(attrs["op"])[k]
            i = vals.index(attrs[k]) if attrs[k] in vals else 0
            step = int(rng.choice([-1, 1]))  # to a neighbouring value, turning back at either end
            attrs[k] = vals[i + step if 0 <= i + step < len(vals) else i - step]
            _relabel(c, n, attrs)
            return True

        ops = {"add_layer": add_layer, "remove_layer": lambda c: _remove_node(c, rng),
               "add_edge": lambda c: _add_edge(c, rng), "remove_edge": lambda c: _remove_edge(c, rng),
               "change_layer": change_layer, "mutate_param": mutate_param}
        return _mutate(g, rng, weights, ops, self.valid_module)

    # --- blueprints ----------------------------------------------------------------
    def minimal_blueprint(self, rng: np.random.Generator, species: list[int]) -> nx.DiGraph:
        g = new_graph()
        w = add_node(g, {"op": "module", "species": int(species[int(rng.integers(len(species)))])})
        g.add_edges_from([(0, w), (w, 1)])
        return g

    def mutate_blueprint(self, g: nx.DiGraph, rng: np.random.Generator, weights: dict[str, float],
                         species: list[int]) -> nx.DiGraph:
        """Like :meth:`mutate_module`; ``change_layer``/``mutate_param`` point a node at another
        module species."""
        v = self.vocab

        def add_node_(c):
            s = int(species[int(rng.integers(len(species)))])
            return c.number_of_nodes() - 2 < v.max_blueprint_modules and _split_edge(c, rng, {"op": "module", "species": s})

        def change_species(c):
            n = inner_nodes(c)[int(rng.integers(len(inner_nodes(c))))]
            others = [s for s in species if s != c.nodes[n]["attrs"]["species"]]
            if not others:
                return False
            _relabel(c, n, {**c.nodes[n]["attrs"], "species": int(others[int(rng.integers(len(others)))])})
            return True

        ops = {"add_layer": add_node_, "remove_layer": lambda c: _remove_node(c, rng),
               "add_edge": lambda c: _add_edge(c, rng), "remove_edge": lambda c: _remove_edge(c, rng),
               "change_layer": change_species, "mutate_param": change_species}
        return _mutate(g, rng, weights, ops, lambda c: is_valid(c, v.max_blueprint_modules))

    # --- assembly ---------------------------------------------------------------------
    def assemble(self, blueprint: nx.DiGraph, modules: dict[int, nx.DiGraph]) -> Genome:
        """The network of ``blueprint`` with each node filled by ``modules[species]``."""
        bp = to_dict(blueprint)
        index: dict[int, int] = {}
        mods: list[dict] = []
        nodes = []
        for node in bp["nodes"]:
            if node["op"] == "module":
                s = node["species"]
                if s not in index:
                    if s not in modules:
                        raise ValueError(f"blueprint names module species {s}, which has no module given")
                    index[s] = len(mods)
                    mods.append(to_dict(modules[s]))
                node = {"op": "module", "module": index[s]}
            nodes.append(node)
        return Genome((), self.name, canonical_json({"blueprint": {"nodes": nodes, "edges": bp["edges"]},
                                                      "modules": mods}))

    @staticmethod
    def parts(genome: Genome) -> tuple[dict, list[dict]]:
        """The blueprint (nodes name ``module`` indices) and the module graphs of a network."""
        if genome.space != SPACE_NAME or not genome.spec:
            raise ValueError(f"genome of space {genome.space!r} is not a {SPACE_NAME} network")
        d = json.loads(genome.spec)
        return d["blueprint"], d["modules"]

    def readable(self, genome: Genome) -> dict:
        """The network's graphs as plain JSON-ready data."""
        bp, mods = self.parts(genome)
        return {"blueprint": bp, "modules": mods}

    def validate(self, genome: Genome) -> None:
        bp, mods = self.parts(genome)
        g = from_dict(bp)
        if not is_valid(g, self.vocab.max_blueprint_modules):
            raise ValueError("blueprint is not a valid DAG from input to output")
        used = {a["module"] for _, a in g.nodes(data="attrs") if a["op"] == "module"}
        if used != set(range(len(mods))):
            raise ValueError(f"blueprint uses modules {sorted(used)} but the network lists {len(mods)}")
        for k, m in enumerate(mods):
            mg = from_dict(m)
            if not is_valid(mg, self.vocab.max_module_layers):
                raise ValueError(f"module {k} is not a valid DAG from input to output")
            bad = [a["op"] for _, a in mg.nodes(data="attrs") if a["op"] not in (*LAYER_OPS, *IO)]
            if bad:
                raise ValueError(f"module {k} has unknown layer type(s) {bad}")

    def layer_graph(self, genome: Genome) -> nx.DiGraph:
        """The assembled network as one DAG of layers: each blueprint node expands into its
        module, whose input and output become pass-through ``merge`` nodes. The builder turns
        this into torch modules."""
        bp, mods = self.parts(genome)
        g = nx.DiGraph()
        ends: dict[int, tuple[int, int]] = {}
        for k, node in enumerate(bp["nodes"]):
            if node["op"] in IO:
                nid = len(g)
                g.add_node(nid, **{"attrs": {"op": node["op"]}})
                ends[k] = (nid, nid)
                continue
            m = mods[node["module"]]
            base = len(g)
            for j, layer in enumerate(m["nodes"]):
                g.add_node(base + j, attrs={"op": "merge"} if layer["op"] in IO else dict(layer),
                           module=node["module"], slot=k)
            g.add_edges_from((base + u, base + v) for u, v in m["edges"])
            mi = next(j for j, layer in enumerate(m["nodes"]) if layer["op"] == "input")
            mo = next(j for j, layer in enumerate(m["nodes"]) if layer["op"] == "output")
            ends[k] = (base + mi, base + mo)
        g.add_edges_from((ends[u][1], ends[v][0]) for u, v in bp["edges"])
        return g

    def describe(self, genome: Genome) -> str:
        """One line: the blueprint as ``nodes | edges`` over modules m0, m1, ..., then each
        module the same way over its layers, e.g.
        ``blueprint 0:input 1:m0 2:output | 0->1 1->2; m0 0:input 1:conv16k3/relu 2:output | 0->1 1->2``."""
        bp, mods = self.parts(genome)
        parts = ["blueprint " + graph_text(bp, slot_text)] + [f"m{k} " + graph_text(m, layer_text)
                                                             for k, m in enumerate(mods)]
        return "; ".join(parts)

    # --- whole networks (random search, checks) ------------------------------------------
    def largest(self) -> Genome:
        """The costliest network the limits allow, as far as a simple rule goes: a chain of the
        most module slots, each module a chain of the most convolutions at the widest channels
        and kernel (the nadir of the cost objectives when they are normalised)."""
        v = self.vocab
        n = v.max_blueprint_modules
        return self.assemble(chain_graph([{"op": "module", "species": s} for s in range(n)]),
                             {s: self.widest_module() for s in range(n)})

    def widest_module(self) -> nx.DiGraph:
        """A chain of the most convolutions at the widest channels and kernel."""
        v = self.vocab
        return chain_graph([{"op": "conv", "channels": max(v.conv_channels), "kernel": max(v.conv_kernels),
                             "act": v.activations[0]}] * v.max_module_layers)

    def sample(self, rng: np.random.Generator, mutations: int = 3) -> Genome:
        """A random network: a minimal blueprint and modules, each grown by a few mutations."""
        w = {"add_layer": 3, "add_edge": 1, "change_layer": 1, "mutate_param": 1}
        species = list(range(1 + int(rng.integers(2))))
        bp = self.minimal_blueprint(rng, species)
        for _ in range(int(rng.integers(mutations + 1))):
            bp = self.mutate_blueprint(bp, rng, w, species)
        used = sorted({a["species"] for _, a in bp.nodes(data="attrs") if a["op"] == "module"})
        modules = {}
        for s in used:
            m = self.minimal_module(rng)
            for _ in range(int(rng.integers(mutations + 1))):
                m = self.mutate_module(m, rng, w)
            modules[s] = m
        return self.assemble(bp, modules)

    def build(self, genome: Genome, input_shape: tuple[int, ...], num_classes: int):
        """A freshly initialised torch network of the assembled network."""
        from nas.spaces.codeepneat_build import build_codeepneat

        return build_codeepneat(self, genome, input_shape[0], num_classes, tuple(input_shape))

    def distance(self, a: Genome, b: Genome) -> float:
        return compatibility(self.layer_graph(a), self.layer_graph(b), self.vocab)


def _mutate(g: nx.DiGraph, rng: np.random.Generator, weights: dict[str, float], ops: dict, valid) -> nx.DiGraph:
    names = [k for k in ops if weights.get(k, 0) > 0]
    if not names:
        raise ValueError("every mutation weight is 0")
    p = np.array([weights[k] for k in names], dtype=float)
    p /= p.sum()
    for _ in range(20):
        c = g.copy()
        c.graph.clear()
        if ops[names[int(rng.choice(len(names), p=p))]](c) and valid(c) and to_dict(c) != to_dict(g):
            return c
    return g.copy()


def compatibility(a: nx.DiGraph, b: nx.DiGraph, vocab: Vocabulary | None = None, weight: float = 0.5) -> float:
    """NEAT-style compatibility distance for graphs without innovation numbers: the structural
    difference (per node label, how many more one graph has; plus the difference in edge
    counts) over the size of the larger graph, plus ``weight`` times the mean normalised
    difference of the hyperparameters of layer types both graphs use."""
    ca = Counter(op for _, op in a.nodes(data="op"))
    cb = Counter(op for _, op in b.nodes(data="op"))
    structural = sum(abs(ca[k] - cb[k]) for k in ca.keys() | cb.keys()) + abs(a.number_of_edges() - b.number_of_edges())
    size = max(a.number_of_nodes(), b.number_of_nodes(), 1)
    diffs = []
    if vocab is not None:
        for op in sorted(ca.keys() & cb.keys()):
            for k, vals in vocab.choices(op).items():
                if len(vals) < 2:
                    continue
                xa = [x[k] for _, x in a.nodes(data="attrs") if x["op"] == op and x.get(k) in vals]
                xb = [x[k] for _, x in b.nodes(data="attrs") if x["op"] == op and x.get(k) in vals]
                if not xa or not xb:
                    continue
                if k == "act":  # categorical: total-variation distance of the two histograms
                    ha, hb = Counter(xa), Counter(xb)
                    diffs.append(0.5 * sum(abs(ha[c] / len(xa) - hb[c] / len(xb)) for c in ha.keys() | hb.keys()))
                else:  # ordered choices: difference of the mean choice index, over the range
                    ia = np.mean([vals.index(x) for x in xa])
                    ib = np.mean([vals.index(x) for x in xb])
                    diffs.append(abs(float(ia - ib)) / (len(vals) - 1))
    return structural / size + weight * (float(np.mean(diffs)) if diffs else 0.0)

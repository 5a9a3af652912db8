"""Multi-task CoDeepNEAT architectures (Liang, Meyerson & Miikkulainen, 2018).

Two schemes, chosen by ``space.multitask``:

* ``heads`` (CMSR-like): the assembled CoDeepNEAT network is a trunk shared by every task,
  followed by one linear head per task; the genome is an ordinary ``codeepneat`` network and
  the search is CoDeepNEAT unchanged, only the evaluation trains it on all tasks jointly.
* ``routing`` (CTR-like, this module's :class:`RoutingSpace`): a common set of coevolved
  modules, and for each task its own topology over them. A "blueprint" is then one graph per
  task, evolved together; wherever two tasks' topologies name the same module species they
  use the *same* module, i.e. the same parameters. Every routing module maps a
  ``(C, H, W)`` feature map to one of the same shape (``C = space.routing_channels``; layers
  ``conv`` at ``C`` channels, 3x3 stride-1 ``maxpool``/``avgpool``, ``batchnorm``, ``dropout``,
  ``activation``; branches summed), so any module fits anywhere in any task's topology.

A routing genome's spec is ``{"routes": [task graph, ...], "modules": [graph, ...]}`` with
route nodes naming modules by index. This module never builds torch modules (see
:mod:`nas.spaces.multitask_build`).
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np

from nas.genome import Genome, canonical_json
from nas.spaces.codeepneat import (CoDeepNEATSpace, add_node, chain_graph, from_dict, graph_text, is_valid, layer_text,
                                   slot_text, to_dict)

ROUTING_SPACE = "codeepneat_routing"
ROUTING_LAYERS = ("conv", "maxpool", "avgpool", "batchnorm", "dropout", "activation")


def split_tasks(g: nx.DiGraph) -> list[nx.DiGraph] | None:
    """The per-task graphs of a routing blueprint (nodes carry ``task``), each with plain
    ``input``/``output`` roles; None if an edge joins two tasks."""
    task = {n: a.get("task") for n, a in g.nodes(data="attrs")}
    if any(task[u] != task[v] for u, v in g.edges) or any(t is None for t in task.values()):
        return None
    out = []
    for t in sorted(set(task.values())):
        sub = nx.DiGraph()
        ids = {}
        for n in sorted(n for n in g if task[n] == t):
            ids[n] = add_node(sub, {k: v for k, v in g.nodes[n]["attrs"].items() if k != "task"})
        sub.add_edges_from((ids[u], ids[v]) for u, v in g.edges if task[u] == t)
        out.append(sub)
    return out


def join_tasks(parts: list[nx.DiGraph]) -> nx.DiGraph:
    """One graph holding every task's graph, nodes tagged with their task."""
    g = nx.DiGraph()
    for t, part in enumerate(parts):
        ids = {n: add_node(g, {**part.nodes[n]["attrs"], "task": t}) for n in sorted(part)}
        g.add_edges_from((ids[u], ids[v]) for u, v in part.edges)
    return g


class RoutingSpace(CoDeepNEATSpace):
    """Shared modules with one topology per task (see the module docstring)."""

    name = ROUTING_SPACE

    def __init__(self, cfg=None, n_tasks: int = 2, channels: int = 32):
        super().__init__(cfg)
        layers = tuple(op for op in self.vocab.layers if op in ROUTING_LAYERS)
        if "conv" not in layers:
            raise ValueError("space.multitask 'routing' needs 'conv' in space.codeepneat.layers "
                             f"(routing modules are made of {', '.join(ROUTING_LAYERS)})")
        if n_tasks < 1:
            raise ValueError(f"routing needs at least one task, got {n_tasks}")
        self.vocab.layers = layers
        self.vocab.conv_channels = (int(channels),)
        self.n_tasks, self.channels = int(n_tasks), int(channels)

    # --- blueprints: one graph per task ------------------------------------------------
    def valid_blueprint(self, g: nx.DiGraph) -> bool:
        parts = split_tasks(g)
        return parts is not None and len(parts) == self.n_tasks and all(
            is_valid(p, self.vocab.max_blueprint_modules) for p in parts)

    def minimal_blueprint(self, rng: np.random.Generator, species: list[int]) -> nx.DiGraph:
        return join_tasks([super(RoutingSpace, self).minimal_blueprint(rng, species) for _ in range(self.n_tasks)])

    def mutate_blueprint(self, g: nx.DiGraph, rng: np.random.Generator, weights: dict[str, float],
                         species: list[int]) -> nx.DiGraph:
        """Mutate the topology of one task, chosen at random."""
        parts = split_tasks(g)
        if parts is None:
            raise ValueError("routing blueprint has an edge between two tasks")
        t = int(rng.integers(len(parts)))
        parts[t] = super().mutate_blueprint(parts[t], rng, weights, species)
        return join_tasks(parts)

    def crossover_blueprint(self, a: nx.DiGraph, b: nx.DiGraph, rng: np.random.Generator) -> nx.DiGraph | None:
        """Shortest-Edit-Path crossover task by task (a task's topology is only ever crossed
        with the same task's topology in the other parent); None if no task changed."""
        from nas.operators.sep import sep_crossover
        from nas.spaces.codeepneat import to_dict

        pa, pb = split_tasks(a), split_tasks(b)
        if pa is None or pb is None or len(pa) != len(pb):
            return None
        kids = [sep_crossover(x, y, rng, is_valid=lambda g: is_valid(g, self.vocab.max_blueprint_modules)) or x
                for x, y in zip(pa, pb)]
        if all(to_dict(k) == to_dict(x) for k, x in zip(kids, pa)):
            return None
        return join_tasks(kids)

    # --- networks ----------------------------------------------------------------------
    def assemble(self, blueprint: nx.DiGraph, modules: dict[int, nx.DiGraph]) -> Genome:
        parts = split_tasks(blueprint)
        if parts is None:
            raise ValueError("routing blueprint has an edge between two tasks")
        index: dict[int, int] = {}
        mods: list[dict] = []
        routes = []
        for part in parts:
            d = to_dict(part)
            nodes = []
            for node in d["nodes"]:
                if node["op"] == "module":
                    s = node["species"]
                    if s not in index:
                        if s not in modules:
                            raise ValueError(f"routing names module species {s}, which has no module given")
                        index[s] = len(mods)
                        mods.append(to_dict(modules[s]))
                    node = {"op": "module", "module": index[s]}
                nodes.append(node)
            routes.append({"nodes": nodes, "edges": d["edges"]})
        return Genome((), self.name, canonical_json({"routes": routes, "modules": mods}))

    @staticmethod
    def parts(genome: Genome) -> tuple[list[dict], list[dict]]:
        """The per-task routes (nodes name ``module`` indices) and the shared module graphs."""
        if genome.space != ROUTING_SPACE or not genome.spec:
            raise ValueError(f"genome of space {genome.space!r} is not a {ROUTING_SPACE} network")
        d = json.loads(genome.spec)
        return d["routes"], d["modules"]

    def readable(self, genome: Genome) -> dict:
        routes, modules = self.parts(genome)
        return {"routes": routes, "modules": modules}

    def validate(self, genome: Genome) -> None:
        routes, mods = self.parts(genome)
        if len(routes) != self.n_tasks:
            raise ValueError(f"network has {len(routes)} task routes, the data has {self.n_tasks} tasks")
        used: set[int] = set()
        for t, r in enumerate(routes):
            g = from_dict(r)
            if not is_valid(g, self.vocab.max_blueprint_modules):
                raise ValueError(f"route of task {t} is not a valid DAG from input to output")
            used |= {a["module"] for _, a in g.nodes(data="attrs") if a["op"] == "module"}
        if used != set(range(len(mods))):
            raise ValueError(f"routes use modules {sorted(used)} but the network lists {len(mods)}")
        for k, m in enumerate(mods):
            if not is_valid(from_dict(m), self.vocab.max_module_layers):
                raise ValueError(f"module {k} is not a valid DAG from input to output")
            bad = [n["op"] for n in m["nodes"] if n["op"] not in (*ROUTING_LAYERS, "input", "output")]
            wide = [n["channels"] for n in m["nodes"] if n["op"] == "conv" and n["channels"] != self.channels]
            if bad or wide:
                raise ValueError(f"module {k} is not shape-preserving: layers {bad}, conv widths {wide} "
                                 f"(routing modules use {', '.join(ROUTING_LAYERS)} at {self.channels} channels)")

    def describe(self, genome: Genome) -> str:
        routes, mods = self.parts(genome)
        parts = [f"task{t} " + graph_text(r, slot_text) for t, r in enumerate(routes)]
        parts += [f"m{k} " + graph_text(m, layer_text) for k, m in enumerate(mods)]
        return "; ".join(parts)

    def sharing(self, genome: Genome) -> dict:
        """Which tasks use which module, and how similar the tasks' topologies are (Jaccard
        overlap of the modules they use, per pair of tasks)."""
        routes, mods = self.parts(genome)
        uses = [sorted({n["module"] for n in r["nodes"] if n["op"] == "module"}) for r in routes]
        overlap = {}
        for a in range(len(uses)):
            for b in range(a + 1, len(uses)):
                sa, sb = set(uses[a]), set(uses[b])
                overlap[f"{a}-{b}"] = len(sa & sb) / len(sa | sb)
        return {"modules_per_task": uses,
                "tasks_per_module": [[t for t, u in enumerate(uses) if k in u] for k in range(len(mods))],
                "module_overlap": overlap}

    def largest(self) -> Genome:
        n = self.vocab.max_blueprint_modules
        route = [{"op": "module", "species": s} for s in range(n)]
        return self.assemble(join_tasks([chain_graph(route) for _ in range(self.n_tasks)]),
                             {s: self.widest_module() for s in range(n)})

    def layer_graph(self, genome: Genome) -> nx.DiGraph:
        raise ValueError("a routing network has one topology per task: see RoutingSpace.parts / evonas show --draw")

    def distance(self, a: Genome, b: Genome) -> float:
        from nas.spaces.codeepneat import compatibility

        ra, ma = self.parts(a)
        rb, mb = self.parts(b)
        return float(np.mean([compatibility(from_dict(x), from_dict(y), self.vocab) for x, y in zip(ra, rb)])) + \
            compatibility(join_tasks([from_dict(m) for m in ma]), join_tasks([from_dict(m) for m in mb]), self.vocab)

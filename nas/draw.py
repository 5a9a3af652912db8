"""Drawings of assembled networks: a PNG/SVG/PDF with matplotlib, or a Graphviz ``.dot`` file.

Layers are placed left to right by their depth in the DAG; the layers of each blueprint slot
share a colour, so the modules a network was assembled from stay visible.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from nas.genome import Genome
from nas.io import atomic_save_figure, atomic_write_text


def _labelled(space, genome: Genome) -> nx.DiGraph:
    from nas.spaces.codeepneat import layer_text

    g = space.layer_graph(genome)
    for n in sorted(g):  # a module's pass-through ends only clutter the drawing: keep those that merge
        if g.nodes[n]["attrs"]["op"] == "merge" and g.in_degree(n) <= 1:
            g.add_edges_from((p, s) for p in g.predecessors(n) for s in g.successors(n))
            g.remove_node(n)
    for n, attrs in g.nodes(data="attrs"):
        op = attrs["op"]
        g.nodes[n]["label"] = "concat" if op == "merge" else layer_text(attrs)
        g.nodes[n]["group"] = g.nodes[n].get("slot", -1)
    return g


def to_dot(space, genome: Genome) -> str:
    """Graphviz text of the network, one cluster per blueprint slot (render with ``dot -Tpng``)."""
    g = _labelled(space, genome)
    lines = [f'digraph "{genome.key()}" {{', "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fillcolor=white];']
    slots = sorted({s for _, s in g.nodes(data="group") if s >= 0})
    for s in slots:
        module = next(m for _, m in g.nodes(data="module") if m is not None and
                      any(g.nodes[n].get("slot") == s and g.nodes[n].get("module") == m for n in g))
        lines.append(f'  subgraph cluster_{s} {{ label="slot {s}: m{module}"; style=dashed;')
        lines += [f'    n{n} [label="{g.nodes[n]["label"]}"];' for n in sorted(g) if g.nodes[n]["group"] == s]
        lines.append("  }")
    lines += [f'  n{n} [label="{g.nodes[n]["label"]}", fillcolor=lightgray];' for n in sorted(g) if g.nodes[n]["group"] < 0]
    lines += [f"  n{u} -> n{v};" for u, v in sorted(g.edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_network(space, genome: Genome, path: str | Path, title: str | None = None,
                 task_names: list[str] | None = None) -> Path:
    """Draw ``genome`` (an assembled CoDeepNEAT network) to ``path``; the suffix picks the
    format (``.dot`` writes Graphviz text, anything else is a matplotlib image)."""
    path = Path(path)
    if getattr(space, "name", "") == "wann":
        from nas.wann.draw import draw_wann

        return draw_wann(space, genome, path, title)
    if getattr(space, "name", "") == "codeepneat_routing":
        return _draw_routes(space, genome, path, title, task_names)
    if not hasattr(space, "layer_graph"):
        raise ValueError(f"drawing needs a graph space (codeepneat); space {space.name!r} has fixed-length genomes "
                         "(see 'architecture' in the model cards)")
    if path.suffix == ".dot":
        atomic_write_text(path, to_dot(space, genome))
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = _labelled(space, genome)
    for depth, layer in enumerate(nx.topological_generations(g)):
        for n in layer:
            g.nodes[n]["depth"] = depth
    pos = nx.multipartite_layout(g, subset_key="depth")
    cmap = plt.get_cmap("tab10")
    colors = ["lightgray" if g.nodes[n]["group"] < 0 else cmap(g.nodes[n]["group"] % 10) for n in g]
    width = max(6.0, 1.3 * (1 + max(nx.get_node_attributes(g, "depth").values())))

    fig, ax = plt.subplots(figsize=(width, 4.5))
    depth = nx.get_node_attributes(g, "depth")
    for edges, style in (([e for e in g.edges if depth[e[1]] - depth[e[0]] == 1], "arc3"),
                         ([e for e in g.edges if depth[e[1]] - depth[e[0]] > 1], "arc3,rad=-0.35")):
        nx.draw_networkx_edges(g, pos, edgelist=edges, ax=ax, arrows=True, arrowsize=12, edge_color="gray",
                               node_size=2200, node_shape="s", connectionstyle=style)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=2200, node_shape="s", alpha=0.45)
    nx.draw_networkx_labels(g, pos, ax=ax, labels=nx.get_node_attributes(g, "label"), font_size=7)
    ax.set_title(title or f"network {genome.key()}", fontsize=9)
    ax.axis("off")
    return atomic_save_figure(fig, path)


def _draw_routes(space, genome: Genome, path: Path, title: str | None, task_names: list[str] | None) -> Path:
    """Multi-task routing: one panel per task, its topology over the shared modules; a module
    has the same colour in every task that uses it (``.dot``: one cluster per task)."""
    from nas.spaces.codeepneat import from_dict, layer_text, slot_text

    routes, modules = space.parts(genome)
    names = list(task_names or []) + [f"task {t}" for t in range(len(task_names or []), len(routes))]
    legend = {k: " > ".join(layer_text(n) for n in m["nodes"] if n["op"] not in ("input", "output"))
              for k, m in enumerate(modules)}
    graphs = []
    for r in routes:
        g = from_dict(r)
        for n, a in g.nodes(data="attrs"):
            g.nodes[n]["label"] = slot_text(a)
            g.nodes[n]["group"] = a.get("module", -1)
        graphs.append(g)
    if path.suffix == ".dot":
        lines = [f'digraph "{genome.key()}" {{', "  rankdir=LR;", "  node [shape=box, style=rounded];"]
        for t, g in enumerate(graphs):
            lines.append(f'  subgraph cluster_task{t} {{ label="{names[t]}";')
            lines += [f'    t{t}n{n} [label="{g.nodes[n]["label"]}"];' for n in sorted(g)]
            lines += [f"    t{t}n{u} -> t{t}n{v};" for u, v in sorted(g.edges)]
            lines.append("  }")
        lines += [f'  // m{k}: {text}' for k, text in legend.items()]
        atomic_write_text(path, "\n".join(lines + ["}"]) + "\n")
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(graphs), 1, figsize=(8, 1.8 * len(graphs) + 1.2), squeeze=False)
    for t, (g, ax) in enumerate(zip(graphs, axes[:, 0])):
        for depth, layer in enumerate(nx.topological_generations(g)):
            for n in layer:
                g.nodes[n]["depth"] = depth
        pos = nx.multipartite_layout(g, subset_key="depth")
        colors = ["lightgray" if g.nodes[n]["group"] < 0 else cmap(g.nodes[n]["group"] % 10) for n in g]
        nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, edge_color="gray", node_size=900, node_shape="s")
        nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=900, node_shape="s", alpha=0.5)
        nx.draw_networkx_labels(g, pos, ax=ax, labels=nx.get_node_attributes(g, "label"), font_size=8)
        ax.set_title(names[t], fontsize=9, loc="left")
        ax.axis("off")
    fig.suptitle((title or f"network {genome.key()}") + "\n" +
                 "; ".join(f"m{k}: {v}" for k, v in legend.items()), fontsize=8)
    return atomic_save_figure(fig, path)


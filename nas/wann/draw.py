"""A drawing of a weight-agnostic network in the style of the paper's figures: inputs on the left,
outputs on the right, hidden nodes by depth, each node coloured by its activation."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from nas.genome import Genome
from nas.io import atomic_save_figure
from nas.wann.network import ACTIVATIONS


def draw_wann(space, genome: Genome, path: str | Path, title: str | None = None) -> Path:
    """Draw ``genome`` to ``path`` (any matplotlib image format). Inputs that no connection uses
    are left out, so a digits network does not draw 64 idle pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = space.graph(genome)
    idle = [n for n in g if g.nodes[n]["role"] in ("input", "bias") and g.out_degree(n) == 0]
    g.remove_nodes_from(idle)
    depth = {n: 0 for n in g if g.in_degree(n) == 0 and g.nodes[n]["role"] in ("input", "bias")}
    for n in nx.topological_sort(g):
        if n not in depth:
            depth[n] = 1 + max((depth[p] for p in g.predecessors(n)), default=0)
    last = 1 + max(depth.values(), default=0)
    for n in g:
        g.nodes[n]["layer"] = last if g.nodes[n]["role"] == "output" else depth.get(n, 1)
    pos = nx.multipartite_layout(g, subset_key="layer")
    cmap = plt.get_cmap("tab10")
    color = {a: cmap(i % 10) for i, a in enumerate(ACTIVATIONS)}
    node_colors = ["white" if g.nodes[n]["role"] in ("input", "bias") else color[g.nodes[n]["act"]] for n in g]
    labels = {n: ("b" if g.nodes[n]["role"] == "bias" else f"x{n}" if g.nodes[n]["role"] == "input"
                  else f"y{n - space.n_in - 1}" if g.nodes[n]["role"] == "output" else "") for n in g}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * (last + 1)), max(4.0, 0.18 * g.number_of_nodes())))
    nx.draw_networkx_edges(g, pos, ax=ax, edge_color="gray", alpha=0.5, arrows=True, arrowsize=6, width=0.7,
                           node_size=160)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=node_colors, edgecolors="black", linewidths=0.6, node_size=160)
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=6)
    used = sorted({g.nodes[n]["act"] for n in g if g.nodes[n]["role"] in ("hidden", "output")}, key=ACTIVATIONS.index)
    for a in used:
        ax.scatter([], [], c=[color[a]], edgecolors="black", label=a)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title="activation", title_fontsize=7)
    ax.set_title(title or f"WANN {genome.key()}", fontsize=9)
    ax.axis("off")
    return atomic_save_figure(fig, path)

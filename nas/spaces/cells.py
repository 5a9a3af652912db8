"""What the graph-cell spaces (``dag_cell``, ``rnn_cell``) share: crossover of their fixed-length
encodings (standard, gene by gene) and of their graphs (SEP), with edit paths cached per pair."""

from __future__ import annotations

import networkx as nx
import numpy as np

from nas.genome import Genome
from nas.operators.sep import EditPath, edit_path, sep_crossover
from nas.spaces.base import IntegerVectorSpace

_PATHS: dict = {}


class CellSpace(IntegerVectorSpace):
    """Subclasses provide ``canonical_or_none``, ``to_graph``, ``from_graph``, ``mutate``,
    ``crossover_kind`` and ``cache_key()`` (what, besides the genomes, fixes an edit path)."""

    crossover_kind = "uniform"

    def cache_key(self) -> tuple:
        raise NotImplementedError

    def edit_path(self, a: Genome, b: Genome) -> EditPath:
        """The (cached) edit path from ``a``'s graph to ``b``'s."""
        key = (self.name, self.cache_key(), a.values, b.values)
        p = _PATHS.get(key)
        if p is None:
            if len(_PATHS) > 1 << 16:
                _PATHS.clear()
            p = _PATHS[key] = edit_path(self.to_graph(a), self.to_graph(b))
        return p

    def ged(self, a: Genome, b: Genome) -> float:
        """Graph edit distance between two cells (unit costs; see ``nas.operators.sep``)."""
        return 0.0 if a == b else float(self.edit_path(a, b).cost)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        """The configured crossover; when it finds no child (parents too alike), a mutant of ``a``."""
        child = self.sep_crossover(a, b, rng) if self.crossover_kind == "sep" else self.standard_crossover(a, b, rng)
        return child if child is not None else self.mutate(a, rng)

    def renumbered(self, genome: Genome, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError(f"{self.name} cells have no random renumbering")

    def standard_crossover(self, a: Genome, b: Genome, rng: np.random.Generator, tries: int = 50,
                           renumber: bool = False) -> Genome | None:
        """Each gene of the encoding from ``a`` or ``b`` with probability 1/2; the first valid child
        that differs from both parents, or None after ``tries``. The parents are crossed in
        canonical form, or with ``renumber`` under a fresh random numbering each try
        (``renumbered``: the competing-conventions setting of raw encodings)."""
        self.validate(a)
        self.validate(b)
        va, vb = np.array(a.values), np.array(b.values)
        if (va == vb).all():
            return None
        for _ in range(tries):
            if renumber:
                va, vb = self.renumbered(a, rng), self.renumbered(b, rng)
            g = self.canonical_or_none(np.where(rng.random(self.n_var) < 0.5, va, vb))
            if g is not None and g != a and g != b:
                return g
        return None

    def sep_crossover(self, a: Genome, b: Genome, rng: np.random.Generator, tries: int = 50) -> Genome | None:
        """Shortest-Edit-Path crossover of the two cell graphs: a valid child between them
        (nothing pruned), or None."""
        self.validate(a)
        self.validate(b)
        child = sep_crossover(self.to_graph(a), self.to_graph(b), rng, is_valid=lambda g: self._exact_cell(g, a, b),
                              path=self.edit_path(a, b), max_tries=tries)
        return None if child is None else self.from_graph(child)

    def _exact_cell(self, graph: nx.DiGraph, a: Genome, b: Genome) -> bool:
        """A SEP child counts when it is a valid cell as it stands (nothing pruned, so it is the
        graph the edits made and lies between its parents) and is neither parent."""
        g = self.from_graph(graph)
        if g is None or g == a or g == b:
            return False
        h = self.to_graph(g)
        return h.number_of_nodes() == graph.number_of_nodes() and h.number_of_edges() == graph.number_of_edges()

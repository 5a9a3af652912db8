"""Variation operators that work on graphs rather than on fixed genome vectors.

``nas.operators.sep`` is the Shortest-Edit-Path crossover (Qiu & Miikkulainen, 2023): the
child is obtained by applying a random half of the edits of a shortest edit path from one
parent graph to the other. It is generic over ``networkx.DiGraph`` parents and has no torch
dependency; search spaces plug in by converting genomes to graphs and back (see
``nas.spaces.nb201.cell_to_graph`` / ``graph_to_cell``).
"""

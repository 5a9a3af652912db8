"""``space.*`` params to a search space object (kept out of ``nas/spaces/__init__.py`` so that
importing one space does not import the others)."""

from __future__ import annotations


def from_config(space_cfg):
    """The single-task space ``space.*`` describes (the multi-task routing space needs the
    prepared data's tasks: :func:`nas.factory.build_space`)."""
    if space_cfg.kind == "nb201":
        from nas.spaces.nb201 import NB201Space

        return NB201Space(crossover=space_cfg.crossover, channels=space_cfg.nb201_channels, activation=space_cfg.activation,
                          cells=space_cfg.nb201_cells)
    if space_cfg.kind == "dag_cell":
        from nas.spaces.dag_cell import DAGCellSpace

        d = space_cfg.dag_cell
        return DAGCellSpace(d.vertices, d.max_edges, tuple(d.ops), space_cfg.crossover, d.channels, d.stacks,
                            d.cells_per_stack, space_cfg.activation)
    if space_cfg.kind == "rnn_cell":
        from nas.spaces.rnn_cell import RNNCellSpace

        r = space_cfg.rnn_cell
        return RNNCellSpace(r.hidden, r.nodes, tuple(r.ops), space_cfg.crossover, r.hidden_size)
    if space_cfg.kind == "codeepneat":
        from nas.spaces.codeepneat import CoDeepNEATSpace

        return CoDeepNEATSpace(space_cfg.codeepneat, space_cfg.activation)
    from nas.spaces.elastic import ElasticSpace

    return ElasticSpace(space_cfg)

"""Search spaces. Every space keeps one contract (``tests/test_space_contract.py`` runs it over
each): ``name``; ``sample(rng)``, ``validate(genome)``, ``describe(genome)``, ``largest()``,
``distance(a, b)``; and ``build(genome, input_shape, num_classes)``, a freshly initialised
torch network, so each space builds its own models."""

from nas.spaces.elastic import ElasticSpace

__all__ = ["ElasticSpace", "from_config"]


def from_config(space_cfg):
    """The single-task space ``space.*`` describes (the multi-task routing space needs the
    prepared data's tasks: :func:`nas.factory.build_space`)."""
    if space_cfg.kind == "nb201":
        from nas.spaces.nb201 import NB201Space

        return NB201Space(crossover=space_cfg.crossover, channels=space_cfg.nb201_channels,
                          cells=space_cfg.nb201_cells)
    if space_cfg.kind == "codeepneat":
        from nas.spaces.codeepneat import CoDeepNEATSpace

        return CoDeepNEATSpace(space_cfg.codeepneat)
    return ElasticSpace(space_cfg)

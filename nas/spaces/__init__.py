"""Search spaces. Every space keeps one contract (``tests/test_space_contract.py`` runs it over
each): ``name``; ``sample(rng)``, ``validate(genome)``, ``describe(genome)``, ``largest()``,
``distance(a, b)``; and ``build(genome, input_shape, num_classes)``, a freshly initialised
torch network, so each space builds its own models. ``nas.spaces.registry.from_config`` turns
``space.*`` params into a space."""

from nas.spaces.elastic import ElasticSpace

__all__ = ["ElasticSpace"]

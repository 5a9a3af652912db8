"""One contract suite over every search space (nas/spaces/__init__.py names the contract): a
new space added to SPACES is tested by this file; each space builds its own torch models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.config import CoDeepNEATSpaceConfig, MetaSpaceConfig, SpaceConfig
from nas.genome import Genome
from nas.spaces.registry import from_config
from nas.spaces.codeepneat import CoDeepNEATSpace
from nas.spaces.dag_cell import DAGCellSpace
from nas.spaces.rnn_cell import RNNCellSpace
from nas.spaces.elastic import ElasticSpace
from nas.spaces.nb201 import NB201Space
from nas.spaces.meta import ActivationSpace, AugmentationSpace, LossSpace
from nas.spaces.wann import WANNSpace

SHAPE = (1, 8, 8)
SPACES = {
    "elastic_cnn": lambda: ElasticSpace(SpaceConfig()),
    "nb201": lambda: NB201Space(channels=4, cells=1),
    "nb201_sep": lambda: NB201Space(crossover="sep", channels=4, cells=1),
    "codeepneat": lambda: CoDeepNEATSpace(CoDeepNEATSpaceConfig()),
    "wann": lambda: WANNSpace(64, 7),
    "dag_cell": lambda: DAGCellSpace(channels=4, stacks=2),
    "dag_cell_sep": lambda: DAGCellSpace(crossover="sep", channels=4, stacks=2),
    "rnn_cell": lambda: RNNCellSpace(hidden_size=8),
    "rnn_cell_gru": lambda: RNNCellSpace(hidden=1, hidden_size=8),
    "activation": lambda: ActivationSpace(MetaSpaceConfig(), [4, 8]),
    "loss": lambda: LossSpace(MetaSpaceConfig(), [4, 8]),
    "augmentation": lambda: AugmentationSpace(MetaSpaceConfig(), [4, 8]),
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_space_contract(name):
    space = SPACES[name]()
    assert isinstance(space.name, str) and space.name
    a = space.sample(np.random.default_rng(0))
    assert a == space.sample(np.random.default_rng(0)), "sampling is deterministic given the generator"
    samples = [space.sample(np.random.default_rng(s)) for s in range(6)]
    assert len(set(samples)) > 1, "different generators give different architectures"
    for g in [*samples, space.largest()]:
        space.validate(g)
        assert Genome.from_payload(g.payload(), space.name) == g and g.key() == Genome.from_payload(
            g.payload(), space.name).key()
        assert isinstance(space.describe(g), str) and space.describe(g)
    b = samples[1]
    assert space.distance(a, a) == 0 and space.distance(a, b) == pytest.approx(space.distance(b, a))
    with pytest.raises(ValueError):
        space.validate(Genome((0,), "another_space"))

    # each space builds its own models: a forward pass of the right shape, and the same
    # weights from the same torch seed
    for g in (a, space.largest()):
        torch.manual_seed(1)
        net = space.build(g, SHAPE, 7)
        torch.manual_seed(1)
        twin = space.build(g, SHAPE, 7)
        net.eval()
        twin.eval()
        x = torch.randn(3, *SHAPE)
        y = net(x)
        assert y.shape == (3, 7) and torch.isfinite(y).all()
        assert torch.equal(y, twin(x))


@pytest.mark.parametrize("kind", ["elastic_cnn", "nb201", "codeepneat", "dag_cell", "rnn_cell"])
def test_from_config_builds_the_configured_space(kind):
    space = from_config(SpaceConfig(kind=kind))
    assert space.name == SPACES[kind]().name

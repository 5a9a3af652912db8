import numpy as np
import pytest

from nas.config import SpaceConfig
from nas.genome import Genome, candidate_seed
from nas.spaces.elastic import ElasticSpace


WIDTHS = [0.5, 0.75, 1.0]


@pytest.fixture(params=[[1.0], WIDTHS], ids=["fixed_width", "elastic_width"])
def space(request):
    return ElasticSpace(SpaceConfig(width_multipliers=request.param))


def test_encoding_layout(space):
    n_width = 3 if len(space.cfg.width_multipliers) > 1 else 0
    assert space.n_var == 3 + 2 * 3 * 3 + n_width
    assert list(space.upper_bounds[:3]) == [2, 2, 2]
    assert list(space.upper_bounds[21:]) == [2] * n_width
    assert space.decode(space.largest())[0].kernel_size == 7
    assert len(space.decode(space.largest())) == 9 and len(space.decode(space.smallest())) == 3
    assert [b.out_channels for b in space.decode(space.largest())][::3] == [16, 24, 32]


def test_elastic_width_sets_each_stage_channels_and_chains_them():
    space = ElasticSpace(SpaceConfig(width_multipliers=WIDTHS))
    assert space.stage_widths(0) == [8, 12, 16] and space.max_channels == [16, 24, 32]
    values = list(space.largest().values)
    values[21:] = [0, 2, 1]  # stage 0 at half width, stage 1 full, stage 2 three quarters
    g = space.canonical(values)
    blocks = space.decode(g)
    assert space.channels(g) == [8, 24, 24]
    assert [(b.in_channels, b.out_channels) for b in blocks] == [
        (16, 8), (8, 8), (8, 8), (8, 24), (24, 24), (24, 24), (24, 24), (24, 24), (24, 24)]
    assert space.describe(g).startswith("c8:k7e6-k7e6-k7e6 | c24:")
    assert space.smallest().values[21:] == (0, 0, 0) and space.largest().values[21:] == (2, 2, 2)
    assert not np.array_equal(space.encode(g), space.encode(space.largest()))  # width is a surrogate feature
    # a single width choice keeps the genome of the fixed-width space (no width genes)
    fixed = ElasticSpace(SpaceConfig())
    assert fixed.n_var == 21 and fixed.channels(fixed.smallest()) == [16, 24, 32]
    for bad in ([0.5, 0.5], [0.75, 0.5], [0.0, 1.0], [0.5, 1.5]):
        with pytest.raises(ValueError, match="width_multipliers"):
            SpaceConfig(width_multipliers=bad)


def test_canonical_zeroes_inactive_genes_so_one_architecture_has_one_genome(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        raw = rng.integers(0, space.upper_bounds + 1)
        g = space.canonical(raw)
        other = raw.copy()
        for s in range(3):
            for b in range(space.cfg.depths[raw[s]], 3):
                other[space._block_gene(s, b)] = rng.integers(0, 3)
        assert space.canonical(other) == g
        assert space.decode(g) == space.decode(Genome(tuple(raw)))


def test_sample_mutate_crossover_stay_valid_and_are_seeded(space):
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    xs = [space.sample(a) for _ in range(20)]
    assert xs == [space.sample(b) for _ in range(20)]
    rng = np.random.default_rng(2)
    for g in xs:
        space.validate(g)
        m = space.mutate(g, rng)
        space.validate(m)
        assert m != g and m == space.canonical(m.values)
        c = space.crossover(g, xs[0], rng)
        space.validate(c)


def test_validate_rejects_bad_genomes(space):
    with pytest.raises(ValueError, match="genes"):
        space.validate(Genome((0, 1)))
    with pytest.raises(ValueError, match="out of bounds"):
        space.validate(Genome(tuple([5] * space.n_var)))


def test_genome_key_and_seed_are_stable_and_hashable(space):
    g = space.largest()
    assert g.key() == Genome(g.values).key() and len(g.key()) == 12
    assert {g: 1}[Genome(tuple(g.values))] == 1
    assert candidate_seed(0, g) == candidate_seed(0, Genome(g.values))
    assert candidate_seed(0, g) != candidate_seed(1, g)
    assert Genome.from_json(g.to_json()) == g


def test_encode_distinguishes_architectures(space):
    rng = np.random.default_rng(3)
    gs = {space.sample(rng) for _ in range(40)}
    assert len({tuple(space.encode(g)) for g in gs}) == len(gs)
    assert space.distance(space.largest(), space.largest()) == 0

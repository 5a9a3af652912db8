import csv
from pathlib import Path

import numpy as np
import pytest

from nas.genome import Genome
from nas.spaces.nb201 import OPS, NB201Space, format_arch, parse_arch

BENCH_CSV = Path(__file__).resolve().parents[2] / "shared/benchdata/nb201_cifar10.csv"
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture
def space():
    return NB201Space()


def uniform(op: str) -> Genome:
    return Genome((OPS.index(op),) * 6, "nb201")


# --- arch strings ---------------------------------------------------------------------

def test_parse_example():
    g = parse_arch(EXAMPLE)
    assert g.space == "nb201"
    assert g.values == (3, 3, 4, 1, 3, 1)
    assert format_arch(g) == EXAMPLE


def test_round_trip_every_benchmark_row():
    if not BENCH_CSV.exists():
        pytest.skip(f"NAS-Bench-201 table not found at {BENCH_CSV}")
    with BENCH_CSV.open(newline="") as f:
        archs = [row["arch_str"] for row in csv.DictReader(f)]
    assert len(archs) == 15625
    genomes = [parse_arch(s) for s in archs]
    for s, g in zip(archs, genomes):
        assert format_arch(g) == s
    assert len(set(genomes)) == 15625
    space = NB201Space()
    for g in genomes[:200]:
        space.validate(g)


@pytest.mark.parametrize("bad", [
    "",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",                         # 2 nodes
    EXAMPLE + "+|none~0|none~1|none~2|none~3|",                                   # 4 nodes
    EXAMPLE.replace("avg_pool_3x3", "max_pool_3x3"),                              # unknown op
    EXAMPLE.replace("skip_connect~2", "skip_connect~1"),                          # wrong input index
    EXAMPLE.replace("avg_pool_3x3~1", "avg_pool_3x3~x"),                          # non-numeric index
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",  # too few inputs
    EXAMPLE.replace("|nor_conv_3x3~0|+", "nor_conv_3x3~0+", 1),                   # missing bars
    EXAMPLE.replace("nor_conv_3x3~0|+|nor_conv_3x3~0", "nor_conv_3x3|+|nor_conv_3x3~0", 1),  # no '~'
])
def test_malformed_strings_raise(bad):
    with pytest.raises(ValueError):
        parse_arch(bad)


def test_malformed_message_names_the_bad_part():
    with pytest.raises(ValueError, match="max_pool_3x3"):
        parse_arch(EXAMPLE.replace("avg_pool_3x3", "max_pool_3x3"))


# --- space interface ------------------------------------------------------------------

def test_layout_and_special_members(space):
    assert space.name == "nb201" and space.n_var == 6
    assert space.upper_bounds.dtype == np.int64 and list(space.upper_bounds) == [4] * 6
    assert space.largest() == uniform("nor_conv_3x3")
    assert space.smallest() == uniform("skip_connect")
    assert space.describe(space.largest()) == format_arch(space.largest())
    assert space.describe(parse_arch(EXAMPLE)) == EXAMPLE
    assert space.canonical([-1, 7, 2.4, 2.6, 0, 4]).values == (0, 4, 2, 3, 0, 4)
    enc = space.encode(parse_arch(EXAMPLE))
    assert enc.shape == (30 + 125 + 25 + 25 + 5,)
    assert enc[:30].sum() == 6
    assert list(enc[:30].reshape(6, 5).argmax(axis=1)) == [3, 3, 4, 1, 3, 1]
    # EXAMPLE has no `none` edge, so each of the 4 input-to-output paths is live
    assert enc[30:].sum() == 4
    dead = space.encode(parse_arch("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"))
    assert dead[30:].sum() == 1  # only the direct input->output edge carries signal
    with pytest.raises(ValueError):
        space.validate(Genome((0,) * 6))  # wrong space name
    with pytest.raises(ValueError):
        space.validate(Genome((5,) * 6, "nb201"))


def test_sample_mutate_crossover_valid_and_seeded(space):
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    xs = [space.sample(a) for _ in range(30)]
    assert xs == [space.sample(b) for _ in range(30)]
    assert len(set(xs)) > 20

    def variation(seed):
        rng = np.random.default_rng(seed)
        muts = [space.mutate(g, rng) for g in xs]
        muts += [space.mutate(g, rng, rate=0.9) for g in xs]
        kids = [space.crossover(x, y, rng) for x, y in zip(xs, xs[1:])]
        return muts, kids

    muts, kids = variation(2)
    assert (muts, kids) == variation(2)
    for parent, child in zip(xs + xs, muts):
        space.validate(child)
        assert child != parent
    assert all(space.distance(p, c) >= 1 for p, c in zip(xs + xs, muts))
    rng = np.random.default_rng(3)
    assert all(space.distance(g, space.mutate(g, rng, rate=0.0)) == 1 for g in xs)  # exactly one edge
    for (x, y), k in zip(zip(xs, xs[1:]), kids):
        space.validate(k)
        assert all(kv in (xv, yv) for kv, xv, yv in zip(k.values, x.values, y.values))


def test_distance_counts_differing_edges(space):
    g = parse_arch(EXAMPLE)
    assert space.distance(g, g) == 0
    assert space.distance(uniform("none"), uniform("skip_connect")) == 6
    assert space.distance(g, space.largest()) == 3


# --- builder --------------------------------------------------------------------------

def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_builder_shape_params_flops():
    torch = pytest.importorskip("torch")
    from nas.objectives import count_flops
    from nas.spaces.nb201_build import build_nb201

    conv3 = build_nb201(uniform("nor_conv_3x3"))
    conv3.eval()
    with torch.no_grad():
        assert conv3(torch.randn(2, 3, 32, 32)).shape == (2, 10)

    conv1 = build_nb201(uniform("nor_conv_1x1"))
    counts = {op: n_params(build_nb201(uniform(op))) for op in ("none", "skip_connect", "avg_pool_3x3")}
    # NAS-Bench-201 reports 1.531546 MB for the all-conv3x3 cell on CIFAR-10
    assert n_params(conv3) == 1_531_546
    assert abs(n_params(conv3) - 1.531546e6) / 1.531546e6 < 1e-3
    assert n_params(conv1) == 241_306
    assert counts == {"none": 73_306, "skip_connect": 73_306, "avg_pool_3x3": 73_306}
    assert counts["none"] < n_params(conv1) < n_params(conv3)

    assert count_flops(conv3, (3, 32, 32)) > count_flops(conv1, (3, 32, 32))


def test_builder_all_none_cells_still_run():
    torch = pytest.importorskip("torch")
    from nas.spaces.nb201_build import build_nb201

    model = build_nb201(uniform("none"), num_classes=7, cells_per_stage=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)

"""The default data (Omniglot characters pooled, split by writer), the per-layer cost table
(exact params and FLOPs, latency lookup), exact costs in MSuNAS, and the reporting rule."""

from __future__ import annotations

import numpy as np
import pytest

from nas.config import DataConfig, SpaceConfig
from nas.costs import CostTable, CostTableError
from nas.data import DataError, omniglot_pooled, prepare, read_omniglot, writer_split
from nas.genome import Genome
from nas.objectives import count_flops, count_params
from nas.spaces.elastic import ElasticSpace
from nas.spaces.elastic_build import all_layers, build_subnet, subnet_layers
from nas.stages import reported_model
from nas.strategies.base import size_stratified
from nas.supernet import subnet_costs


# ---------------------------------------------------------------------------- data


def test_pooled_omniglot_shapes_and_classes():
    p = prepare(DataConfig(kind="omniglot_pooled", image_size=12), 0)
    assert p.input_shape == (1, 12, 12) and p.num_classes == 136 and not p.is_multitask
    # 20 drawers per character, cut 12 / 4 / 4 by writer
    assert (len(p.y_train), len(p.y_val), len(p.y_test)) == (136 * 12, 136 * 4, 136 * 4)
    for y in (p.y_train, p.y_val, p.y_test):  # every character in every split
        assert set(np.unique(y)) == set(range(136))
    assert p.class_names[0] == "Balinese/character01" and len(set(p.class_names)) == 136
    assert abs(float(p.x_train.mean())) < 1e-4 and abs(float(p.x_train.std()) - 1) < 1e-3
    assert prepare(DataConfig(kind="omniglot_pooled"), 0).input_shape == (1, 16, 16)  # image_size null: 16


def test_pooled_split_by_writer_no_drawer_in_two_splits():
    o = read_omniglot(None, 12)
    for seed in (0, 1, 7):
        split = writer_split(o, seed)
        owners = {}
        for d, s in zip(o.drawer, split):
            owners.setdefault(int(d), set()).add(int(s))
        assert all(len(s) == 1 for s in owners.values()), "a drawer's images fall in two splits"
        assert sorted(sum(1 for s in owners.values() if k in s) for k in range(3)) == [4, 4, 12]
    assert not np.array_equal(writer_split(o, 0), writer_split(o, 1))


def test_omniglot_drawers_choose_the_writer_split_and_bad_counts_are_named():
    p = prepare(DataConfig(kind="omniglot_pooled", image_size=12, omniglot_drawers=(10, 6, 4)), 0)
    assert (len(p.y_train), len(p.y_val), len(p.y_test)) == (136 * 10, 136 * 6, 136 * 4)
    # the same seed keeps the shuffled drawer order: the 4 test drawers are the default split's
    default = prepare(DataConfig(kind="omniglot_pooled", image_size=12), 0)
    np.testing.assert_array_equal(np.sort(p.y_test), np.sort(default.y_test))
    o = read_omniglot(None, 12)
    assert np.array_equal(writer_split(o, 0, (10, 6, 4)) == 2, writer_split(o, 0) == 2)
    per_alphabet = prepare(DataConfig(kind="omniglot", image_size=12, omniglot_drawers=(8, 8, 4)), 0)
    assert len(per_alphabet.y_val) == len(per_alphabet.y_train)
    for bad in ((12, 4, 5), (16, 4, 0)):
        with pytest.raises(ValueError, match="omniglot_drawers"):
            DataConfig(kind="omniglot_pooled", omniglot_drawers=bad)


def test_omniglot_rotations_add_each_character_turned_as_new_classes_in_its_writers_split():
    o = read_omniglot(None, 12)
    plain = omniglot_pooled(o, 0)
    turned = omniglot_pooled(o, 0, rotations=4)
    n, c = len(plain.y), len(plain.class_names)
    assert (len(turned.y), len(turned.class_names)) == (4 * n, 4 * c)
    assert turned.class_names[c + 5] == plain.class_names[5] + "/rot90"
    for k in range(4):
        part = slice(k * n, (k + 1) * n)
        np.testing.assert_array_equal(turned.y[part], plain.y + k * c)
        np.testing.assert_array_equal(turned.split[part], plain.split)
        np.testing.assert_array_equal(turned.x[part], np.rot90(plain.x, k, axes=(2, 3)))
    # a quarter turn counter-clockwise: the top row, read right to left, becomes the left column
    np.testing.assert_array_equal(turned.x[n, 0, :, 0], plain.x[0, 0, 0, ::-1])
    p = prepare(DataConfig(kind="omniglot_pooled", image_size=12, omniglot_rotations=4), 0)
    assert (len(p.y_train), len(p.y_val), len(p.y_test)) == (4 * 136 * 12, 4 * 136 * 4, 4 * 136 * 4)
    with pytest.raises(ValueError, match="omniglot_rotations"):
        DataConfig(kind="digits", omniglot_rotations=4)
    with pytest.raises(ValueError, match="omniglot_rotations"):
        DataConfig(kind="omniglot_pooled", omniglot_rotations=2)


def test_pooled_is_deterministic_and_selects_alphabets():
    a = prepare(DataConfig(kind="omniglot_pooled", image_size=12), 3)
    b = prepare(DataConfig(kind="omniglot_pooled", image_size=12), 3)
    assert a.dataset_hash == b.dataset_hash
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert prepare(DataConfig(kind="omniglot_pooled", image_size=12), 4).dataset_hash != a.dataset_hash
    two = prepare(DataConfig(kind="omniglot_pooled", image_size=12, tasks=["Latin", "Greek"]), 0)
    assert two.num_classes == 26 + 24 and all(n.split("/")[0] in ("Latin", "Greek") for n in two.class_names)
    with pytest.raises(DataError, match="unknown Omniglot alphabet"):
        prepare(DataConfig(kind="omniglot_pooled", tasks=["Klingon"]), 0)


# ---------------------------------------------------------------------------- cost table


SPACE = ElasticSpace(SpaceConfig(width_multipliers=[0.5, 0.75, 1.0]))  # elastic width: the table covers every stage width
SHAPE = (1, 12, 12)


@pytest.fixture(scope="module")
def table() -> CostTable:
    return CostTable.measure(all_layers(SPACE, SHAPE, 136), repeats=2, warmup=1)


def test_table_params_and_flops_are_exact(table):
    rng = np.random.default_rng(0)
    for g in [SPACE.smallest(), SPACE.largest()] + [SPACE.sample(rng) for _ in range(8)]:
        net = build_subnet(SPACE, g, 1, 136)
        c = subnet_costs(table, SPACE, g, SHAPE, 136)
        assert c["params"] == count_params(net)
        assert c["flops"] == count_flops(net, SHAPE)


def test_table_latency_is_the_sum_of_its_measured_parts(tmp_path):
    g = Genome((1, 0, 2) + (0,) * (SPACE.n_var - 6) + (2, 0, 1), SPACE.name)  # depths 2, 1, 3; widths 16, 12, 24
    g = SPACE.canonical(g.values)
    layers = subnet_layers(SPACE, g, SHAPE, 10)
    t = CostTable.measure(layers, repeats=3, warmup=1)
    assert len(t.entries) == len({layer.key for layer in layers}) < len(layers)  # later blocks of a stage share a shape
    parts = [t.entries[layer.key]["latency_ms"] for layer in layers]
    assert all(v > 0 for v in parts)
    assert subnet_costs(t, SPACE, g, SHAPE, 10)["latency_ms"] == pytest.approx(sum(parts))
    t.save(tmp_path / "t.json")
    back = CostTable.load(tmp_path / "t.json")
    assert back.entries == t.entries and "thread" in back.device
    with pytest.raises(CostTableError, match="no entry for layer"):
        subnet_costs(back, SPACE, SPACE.largest(), SHAPE, 10)
    (tmp_path / "bad.json").write_text('{"layers": {"x": {"params": 1}}}')
    with pytest.raises(CostTableError, match="not a cost table"):
        CostTable.load(tmp_path / "bad.json")
    with pytest.raises(CostTableError, match="no cost table"):
        CostTable.load(tmp_path / "missing.json")


def test_size_stratified_spans_the_sizes(table):
    size = lambda g: subnet_costs(table, SPACE, g, SHAPE, 136)["params"]  # noqa: E731
    gs = size_stratified(SPACE, np.random.default_rng(0), 12, size)
    sizes = [size(g) for g in gs]
    assert gs[0] == SPACE.smallest() and gs[-1] == SPACE.largest() and len(set(gs)) == 12
    assert sizes == sorted(sizes)


def test_msunas_predicts_accuracy_only_when_costs_are_exact(table):
    from nas.genome import EvaluationResult
    from nas.strategies.msunas import MSuNASStrategy

    costs = lambda g: subnet_costs(table, SPACE, g, SHAPE, 136)  # noqa: E731
    s = MSuNASStrategy(SPACE, ["val_accuracy", "params", "latency_ms"], {"max_flops": 5e6}, 0, ["ridge"], 1,
                       inner_generations=2, inner_population=12, exact_costs=costs)
    assert s.predicted == ["val_accuracy"]
    rng = np.random.default_rng(1)
    first = s.ask(8)
    s.tell([EvaluationResult(g, {"val_accuracy": float(rng.random()), **costs(g)}, "ok") for g in first])
    assert len(s.ask(4)) == 4
    assert list(s.last_fit) == ["val_accuracy"]
    plain = MSuNASStrategy(SPACE, ["val_accuracy", "params"], {}, 0, ["ridge"], 1)
    assert plain.predicted == ["val_accuracy", "params"]


# ---------------------------------------------------------------------------- reporting rule


def test_reported_model_is_chosen_by_validation_never_by_test():
    cards = [{"candidate_id": "a", "selected_by": ["knee"], "params": 10, "val_accuracy": 0.70, "test_accuracy": 0.90},
             {"candidate_id": "b", "selected_by": ["best_accuracy"], "params": 50, "val_accuracy": 0.80,
              "test_accuracy": 0.60},
             {"candidate_id": "c", "selected_by": ["spread"], "params": 30, "val_accuracy": 0.80, "test_accuracy": 0.65}]
    r = reported_model(cards)
    assert r["reported_model"] == "c"  # tie on validation: fewer params; the test-best "a" is not chosen
    assert r["test_accuracy"] == 0.65 and r["reported_val_accuracy"] == 0.80
    assert {m["candidate_id"]: m["test_accuracy"] for m in r["selected_models"]} == {"a": 0.9, "b": 0.6, "c": 0.65}
    assert "test split chooses nothing" in r["report_rule"]
    assert reported_model([])["reported_model"] is None


def test_npz_is_resized_to_image_size_or_kept(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(90, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.repeat(np.arange(15), 6))
    small = prepare(DataConfig(kind="npz", path=str(tmp_path / "d.npz"), image_size=12), 0)
    assert small.input_shape == (1, 12, 12) and small.num_classes == 15
    assert prepare(DataConfig(kind="npz", path=str(tmp_path / "d.npz")), 0).input_shape == (1, 28, 28)


# ---------------------------------------------------------------------------- the default data, end to end


@pytest.mark.integration
def test_pipeline_stages_on_the_default_data(tmp_path):
    """prepare -> pretrain (with its cost table) -> surrogate -> search -> select on omniglot_pooled,
    with real Dask workers and real training, tiny budgets."""
    import json

    from nas import stages
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, ["data.kind=omniglot_pooled", "data.image_size=10", "supernet.epochs=1",
                                 "selection.rules=[best_accuracy, knee]"])
    data = stages.prepare_data(cfg)
    stages.write_prepared(cfg, data, 0.0)
    assert data.num_classes == 136 and data.input_shape == (1, 10, 10)
    meta = stages.pretrain_supernet(cfg)
    assert meta["cost_table"]["layers"] > 10 and (tmp_path / "artifacts/supernet/cost_table.json").is_file()
    report = stages.fit_surrogate(cfg, stages.sample_subnets(cfg), 0.0)
    assert list(report["heldout"]) == ["val_soft_accuracy"] == [report["predicts"]]  # costs are exact: only the score is predicted
    lat = json.loads((tmp_path / "reports/surrogate.json").read_text())["latency_table"]
    assert lat["n"] >= 3 and -1 <= lat["kendall_tau"] <= 1
    stages.run_search(cfg)
    all_df, front = stages.pareto_front(cfg)
    from nas.supernet import load_supernet

    bundle = load_supernet(cfg.supernet.out_dir)
    for r in all_df[all_df.status == "ok"].to_dict("records")[:5]:  # every candidate's costs from the table
        c = bundle.costs(Genome.from_json(r["genome"], "elastic_cnn"))
        assert (r["params"], r["flops"], r["latency_ms"]) == (c["params"], c["flops"], pytest.approx(c["latency_ms"]))
    picks = stages.choose(cfg, front)
    cards = [stages.finetune_and_export(cfg, row, picks[row["candidate_id"]])
             for row in front.to_dict("records") if row["candidate_id"] in picks]
    metrics = stages.write_selection(cfg, all_df, front, picks, cards, 0.0)
    best = max(cards, key=lambda c: (c["val_accuracy"], -c["params"]))
    assert metrics["reported_model"] == best["candidate_id"] and metrics["test_accuracy"] == best["test_accuracy"]
    assert "best_test_accuracy" not in metrics and len(metrics["selected_models"]) == len(cards)
    assert (tmp_path / "reports/pareto.png").stat().st_size > 0


def test_npz_with_many_classes_and_few_images_splits_every_class(tmp_path):
    """150 classes in 480 images: each split smaller than the class count, where a plain
    stratified split fails; every class still lands in train, val and test."""
    rng = np.random.default_rng(0)
    y = np.concatenate([np.arange(150).repeat(3), rng.integers(0, 150, 30)])
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, size=(len(y), 28, 28)).astype(np.uint8), y=y)
    p = prepare(DataConfig(kind="npz", path=str(tmp_path / "d.npz"), image_size=12), 0)
    assert p.num_classes == 150 and len(p.y_train) + len(p.y_val) + len(p.y_test) == len(y)
    for split in (p.y_train, p.y_val, p.y_test):
        assert set(np.unique(split)) == set(range(150))
    assert prepare(DataConfig(kind="npz", path=str(tmp_path / "d.npz"), image_size=12), 0).dataset_hash == p.dataset_hash

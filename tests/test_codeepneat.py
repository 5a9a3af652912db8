"""CoDeepNEAT: the space (modules, blueprints, assembly), the torch builder, NEAT's mechanics
in the coevolution strategy, and whole searches through the pipeline in both modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
import torch

from nas.config import CoDeepNEATConfig, ConfigError, load_config
from nas.evaluators import LocalPool
from nas.genome import EvaluationResult
from nas.spaces.codeepneat import (CoDeepNEATSpace, add_node, chain_graph, compatibility, from_dict, inner_nodes,
                                   is_valid, new_graph, to_dict)
from nas.spaces.codeepneat_build import build_codeepneat
from nas.strategies.codeepneat import CoDeepNEATStrategy, NEATPopulation
from tests.analytic import AnalyticGraphEvaluator
from tests.conftest import ROOT

SPACE = CoDeepNEATSpace()


def chain(*nodes) -> nx.DiGraph:
    return chain_graph(list(nodes))


CONV8 = {"op": "conv", "channels": 8, "kernel": 3, "act": "relu"}
DENSE16 = {"op": "dense", "units": 16, "act": "tanh"}


# ------------------------------------------------------------------------------ the space


def test_a_network_key_does_not_depend_on_species_numbers():
    bp = {s: chain({"op": "module", "species": s}) for s in (3, 7)}
    m = chain(CONV8)
    assert SPACE.assemble(bp[3], {3: m}) == SPACE.assemble(bp[7], {7: m})
    assert SPACE.assemble(bp[3], {3: m}) != SPACE.assemble(bp[3], {3: chain(DENSE16)})


def test_assembled_network_round_trips_and_describes_itself():
    bp = new_graph()
    a = add_node(bp, {"op": "module", "species": 0})
    b = add_node(bp, {"op": "module", "species": 1})
    bp.add_edges_from([(0, a), (0, b), (a, 1), (b, 1)])
    g = SPACE.assemble(bp, {0: chain(CONV8, {"op": "maxpool"}), 1: chain(DENSE16)})
    SPACE.validate(g)
    blueprint, modules = SPACE.parts(g)
    assert len(modules) == 2 and sum(n["op"] == "module" for n in blueprint["nodes"]) == 2
    text = SPACE.describe(g)
    assert "conv8k3/relu" in text and "dense16/tanh" in text and "maxpool" in text
    layers = SPACE.layer_graph(g)
    assert nx.is_directed_acyclic_graph(layers)
    assert sorted(a["op"] for _, a in layers.nodes(data="attrs") if a["op"] not in ("merge",)) == \
        ["conv", "dense", "input", "maxpool", "output"]
    assert to_dict(from_dict(to_dict(chain(CONV8)))) == to_dict(chain(CONV8))


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d["modules"][0]["nodes"].append({"op": "warp"}), "not a valid DAG|unknown layer"),
    (lambda d: d["modules"][0]["edges"].append([2, 1]), "not a valid DAG"),
    (lambda d: d["blueprint"]["nodes"].__setitem__(1, {"op": "module", "module": 5}), "uses modules"),
])
def test_validate_names_what_is_wrong(corrupt, message):
    g = SPACE.assemble(chain({"op": "module", "species": 0}), {0: chain(CONV8, DENSE16)})
    d = json.loads(g.spec)
    corrupt(d)
    bad = type(g).from_payload(d, "codeepneat")
    with pytest.raises(ValueError, match=message):
        SPACE.validate(bad)


@pytest.mark.parametrize("op", ["add_layer", "remove_layer", "add_edge", "remove_edge", "change_layer", "mutate_param"])
def test_each_mutation_keeps_modules_and_blueprints_valid(op):
    rng = np.random.default_rng(0)
    m = SPACE.minimal_module(rng)
    bp = SPACE.minimal_blueprint(rng, [0, 1, 2])
    grow = {"add_layer": 1.0, "add_edge": 1.0}
    for _ in range(6):  # something to remove or rewire
        m = SPACE.mutate_module(m, rng, grow)
        bp = SPACE.mutate_blueprint(bp, rng, grow, [0, 1, 2])
    changed = 0
    for _ in range(30):
        m2 = SPACE.mutate_module(m, rng, {op: 1.0})
        b2 = SPACE.mutate_blueprint(bp, rng, {op: 1.0}, [0, 1, 2])
        assert is_valid(m2, SPACE.vocab.max_module_layers) and is_valid(b2, SPACE.vocab.max_blueprint_modules)
        changed += to_dict(m2) != to_dict(m)
        m, bp = m2, b2
    assert changed > 0


def test_compatibility_distance_grows_with_structural_and_parameter_differences():
    a = chain(CONV8)
    wider = chain({**CONV8, "channels": 64})
    deeper = chain(CONV8, DENSE16, {"op": "dropout", "rate": 0.5})
    assert compatibility(a, a, SPACE.vocab) == 0
    assert 0 < compatibility(a, wider, SPACE.vocab) < compatibility(a, deeper, SPACE.vocab)


# ---------------------------------------------------------------------------- the builder


def test_builder_parameter_count_of_a_known_network():
    g = SPACE.assemble(chain({"op": "module", "species": 0}), {0: chain(CONV8)})
    net = build_codeepneat(SPACE, g, 1, 10, (1, 8, 8))
    # conv 1->8 3x3 (72 + 8), head: 8 channels pooled to 4x4 = 128 features -> 10 (1280 + 10)
    assert sum(p.numel() for p in net.parameters()) == 80 + 1290


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16)])
def test_random_assembled_networks_build_run_and_trace(shape):
    rng = np.random.default_rng(1)
    for _ in range(15):
        g = SPACE.sample(rng, mutations=5)
        net = build_codeepneat(SPACE, g, shape[0], 7, shape)
        assert net(torch.randn(3, *shape)).shape == (3, 7)
        traced = torch.fx.symbolic_trace(net)
        x = torch.randn(2, *shape)
        net.eval()
        assert torch.allclose(traced(x), net(x))


def test_shape_adapters_merge_vectors_and_feature_maps():
    bp = new_graph()
    a = add_node(bp, {"op": "module", "species": 0})
    b = add_node(bp, {"op": "module", "species": 1})
    bp.add_edges_from([(0, a), (0, b), (a, 1), (b, 1)])
    g = SPACE.assemble(bp, {0: chain(DENSE16), 1: chain({**CONV8, "channels": 4}, {"op": "maxpool"})})
    net = build_codeepneat(SPACE, g, 1, 10, (1, 8, 8))
    # dense: 1x8x8 pooled to 4x4 -> 16 units; conv+maxpool: 4x4x4 = 64 features; head 80 -> 10
    assert net.head.in_features == 16 + 64
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)


# ---------------------------------------------------------------------------- NEAT mechanics


def _numbers(n: int, target: int) -> NEATPopulation:
    pop = NEATPopulation("test", n, target, lambda a, b: abs(a - b) / 10)
    for v in range(n):
        pop.add(v)
    return pop


def test_speciation_steers_towards_the_target_number_of_species():
    pop = _numbers(30, 3)
    counts = []
    for _ in range(25):
        pop.speciate()
        counts.append(len(pop.species))
    assert counts[0] > 3
    assert 2 <= counts[-1] <= 4
    assert all(m.species in pop.species for m in pop.members.values())


def test_fitness_sharing_elitism_and_stagnation():
    pop = NEATPopulation("test", 20, 2, lambda a, b: abs(a - b))
    for v in [0.0] * 10 + [100.0] * 10:
        pop.add(v)
    pop.threshold = 1.0
    pop.speciate()
    assert len(pop.species) == 2
    strong, weak = sorted(pop.species, key=lambda s: pop.species[s].members[0])
    for i, m in enumerate(pop.members.values()):
        m.fitness = (0.9 if m.species == strong else 0.1) + 0.001 * i
    best_of = {s: max(pop.species[s].members, key=lambda i: pop.members[i].fitness) for s in (strong, weak)}
    children = []

    def child(pool, rng):
        children.append(pool)
        return pool[0].graph, (pool[0].id,)

    pop.reproduce(np.random.default_rng(0), 0, elitism=1, survival=0.5, stagnation=5, make_child=child)
    assert best_of[strong] in pop.members and best_of[weak] in pop.members  # elites survive unchanged
    assert len(pop.members) == 20
    from_strong = sum(p[0].species == strong for p in children)
    assert from_strong / len(children) == pytest.approx(0.9, abs=0.07)  # offspring follow mean fitness
    assert all(len(p) == 5 for p in children)  # only the best half of a species reproduces
    # the weak species never improves again: culled once it has stagnated long enough
    for gen in range(1, 8):
        for m in pop.members.values():
            m.fitness = 0.9 if m.graph == 0.0 else 0.1
        pop.speciate()
        pop.reproduce(np.random.default_rng(gen), gen, 1, 0.5, 5, child)
    assert {m.graph for m in pop.members.values()} == {0.0}


def test_start_minimal_and_credit_each_member_the_mean_of_its_networks():
    s = CoDeepNEATStrategy(SPACE, ["val_accuracy"], {}, 0, CoDeepNEATConfig(module_population=8,
                                                                              blueprint_population=4), 8)
    assert all(len(inner_nodes(m.graph)) == 1 for m in s.modules.members.values())
    assert all(len(inner_nodes(b.graph)) == 1 for b in s.blueprints.members.values())
    asked = s.ask(8)
    acc = {g: 0.5 + 0.05 * i for i, g in enumerate(asked)}
    uses = {g: list(s.uses[g]) for g in asked}
    s.archive.add([EvaluationResult(g, {"val_accuracy": a}) for g, a in acc.items()])
    s._credit()
    order = sorted(asked, key=lambda g: -acc[g])
    fit = {g: 1 - k / (len(order) - 1) for k, g in enumerate(order)}
    for kind, pop, idx in (("b", s.blueprints, 0), ("m", s.modules, 1)):
        for m in pop.members.values():
            mine = [fit[g] for g in asked for u in uses[g] if (m.id == u[0] if idx == 0 else m.id in u[1])]
            assert m.fitness == (pytest.approx(np.mean(mine)) if mine else None)


def test_async_updates_evolve_on_every_batch_and_never_repeat_a_network():
    ev = AnalyticGraphEvaluator()
    s = CoDeepNEATStrategy(SPACE, ["val_accuracy", "params"], {}, 3, CoDeepNEATConfig(module_population=8,
                                                                                        blueprint_population=4), 8)
    in_flight = s.ask(8)
    seen = set(in_flight)
    changed = 0
    for _ in range(10):
        done, in_flight = in_flight[:2], in_flight[2:]
        before = {m.id for m in s.modules.members.values()} | {-1 - b for b in s.blueprints.members}
        s.tell(LocalPool().evaluate(ev, done))
        changed += ({m.id for m in s.modules.members.values()} | {-1 - b for b in s.blueprints.members}) != before
        new = s.ask(2)
        assert len(new) == 2 and not set(new) & seen
        seen.update(new)
        in_flight += new
    assert len(s.history) == 10  # an update per batch of M = 2 results
    assert changed >= 5  # offspring replaced evaluated members while the rest were still in flight


def test_complexity_grows_only_as_far_as_it_pays():
    """With accuracy rewarding convolutional capacity, the search grows networks beyond the
    minimal start and finds far better ones than the first generation."""
    s = CoDeepNEATStrategy(SPACE, ["val_accuracy"], {}, 0, CoDeepNEATConfig(), 20)
    ev = AnalyticGraphEvaluator()
    history = []
    for _ in range(8):
        results = LocalPool().evaluate(ev, s.ask(20))
        s.tell(results)
        history.append(results)

    def layers(g):
        return sum(a["op"] in ("conv", "dense") for _, a in SPACE.layer_graph(g).nodes(data="attrs"))

    first = max(r.metrics["val_accuracy"] for r in history[0])
    best = max((r for rs in history for r in rs), key=lambda r: r.metrics["val_accuracy"])
    assert best.metrics["val_accuracy"] > first + 0.05
    assert layers(best.genome) > 1
    assert np.mean([layers(r.genome) for r in history[-1]]) > np.mean([layers(r.genome) for r in history[0]])


def test_sep_crossover_of_modules_gives_valid_children():
    from nas.operators.sep import sep_crossover

    rng = np.random.default_rng(0)
    a = chain(CONV8, {"op": "maxpool"}, DENSE16)
    b = chain({**CONV8, "channels": 32}, {"op": "dropout", "rate": 0.25}, {"op": "batchnorm"}, DENSE16)
    kids = [sep_crossover(a, b, rng, is_valid=lambda g: is_valid(g, 6)) for _ in range(10)]
    kids = [k for k in kids if k is not None]
    assert kids
    for k in kids:
        assert is_valid(k, 6)
        assert not nx.is_isomorphic(k, a, node_match=lambda x, y: x["op"] == y["op"])
        g = SPACE.assemble(chain({"op": "module", "species": 0}), {0: k})
        build_codeepneat(SPACE, g, 1, 10, (1, 8, 8))


# ---------------------------------------------------------------------------- configuration


def test_space_kind_alone_selects_codeepneat_and_training():
    cfg = load_config(ROOT / "params.yaml", ["space.kind=codeepneat"])
    assert cfg.search.strategy == "codeepneat" and cfg.evaluation.kind == "train"
    assert load_config(ROOT / "params.yaml").search.strategy == "msunas"
    with pytest.raises(ConfigError, match="fixed-length genome"):
        load_config(ROOT / "params.yaml", ["space.kind=codeepneat", "search.strategy=nsga2"])
    with pytest.raises(ConfigError, match="needs space.kind 'codeepneat'"):
        load_config(ROOT / "params.yaml", ["search.strategy=codeepneat"])
    with pytest.raises(ConfigError, match="conv_kernels must be odd"):
        load_config(ROOT / "params.yaml", ["space.kind=codeepneat", "space.codeepneat.conv_kernels=[2,3]"])


# ---------------------------------------------------------------------------- through the pipeline


# the tiny CoDeepNEAT budget the pipeline tests run (on digits, 2 training epochs per network)
PIPELINE_SETS = ["data.kind=digits", "search.population=6", "search.generations=2",
                 "evaluation.train_epochs=2", "selection.finetune_epochs=1", "selection.n_spread=1",
                 "evaluation.latency_repeats=3", "evaluation.latency_warmup=1", "search.codeepneat.module_population=8",
                 "search.codeepneat.blueprint_population=4"]


@pytest.mark.integration
@pytest.mark.slow
def test_codeepneat_search_under_dvc_in_both_modes(tmp_path, runs_api):
    """Switching the kind of search from the repository root (issue 17): `dvc exp run -S
    space.kind=codeepneat` runs prepare, records that pretrain and surrogate were skipped, then
    searches and selects with real training through Prefect and Dask; a second experiment in
    async mode reruns only search and select."""
    from tests.conftest import repo_copy, sh

    repo, env = repo_copy(tmp_path, PIPELINE_SETS, runs_api)
    out = sh(["dvc", "exp", "run", "-n", "cdn", "-S", "space.kind=codeepneat", "-S", "evaluation.init=autoinit"],
             repo, env)
    for stage in ("prepare", "pretrain", "surrogate", "search", "select"):
        assert f"Running stage '{stage}'" in out
    for note in ("artifacts/supernet/skipped.json", "artifacts/surrogate/skipped.json"):
        assert json.loads((repo / note).read_text())["evaluation_kind"] == "train"
    front = json.loads((repo / "artifacts/select/codeepneat_front.json").read_text())
    assert front and all({"blueprint", "modules", "architecture", "val_accuracy", "params"} <= set(r) for r in front)
    pops = json.loads((repo / "artifacts/search/codeepneat_populations.json").read_text())
    assert pops["modules"]["members"] and pops["blueprints"]["members"] and pops["evaluated"] == 18
    cards = [json.loads(p.read_text()) for p in (repo / "artifacts/select/models").glob("*.json")]
    assert cards and all(c["space"] == "codeepneat" and (repo / "artifacts/select/models" / c["files"]["onnx"]).is_file()
                         for c in cards)
    assert max(r["val_accuracy"] for r in front) > 0.5  # real training on digits, 2 epochs
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["strategy"] == "codeepneat" and metrics["n_evaluated"] == 18
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()

    out_png = tmp_path / "best.png"
    proc = sh(["evonas", "show", "--draw", "best", "--out", str(out_png)], repo, env)
    assert out_png.stat().st_size > 5000 and "drawing:" in proc
    from nas.draw import draw_network
    from nas.genome import Genome

    dot = draw_network(SPACE, Genome.from_payload({"blueprint": front[0]["blueprint"], "modules": front[0]["modules"]},
                                                  "codeepneat"), tmp_path / "n.dot")
    assert dot.read_text().startswith("digraph") and "cluster_" in dot.read_text()

    out = sh(["dvc", "exp", "run", "-n", "cdn-async", "-S", "search.mode=async", "-S", "search.async.in_flight=4",
              "-S", "search.async.batch=2", "-S", "search.async.budget=8"], repo, env)
    assert "Running stage 'search'" in out and "Running stage 'select'" in out
    assert not any(f"Running stage '{s}'" in out for s in ("prepare", "pretrain", "surrogate"))
    summary = json.loads((repo / "artifacts/search/summary.json").read_text())
    assert summary["mode"] == "async" and summary["n_evaluated"] >= 8
    pops = json.loads((repo / "artifacts/search/codeepneat_populations.json").read_text())
    assert len(pops["history"]) >= 4  # the populations evolved on every batch of M = 2 results


def test_a_checkpoint_replays_into_the_same_coevolution(tmp_path):
    """Resume after a crash: replaying the recorded asks and tells restores both populations
    and the generator, so the resumed search proposes what the original would have."""
    from nas.checkpoint import Checkpointer, RecordingStrategy, replay
    from nas.evaluators import evaluate

    def fresh(seed=0):
        return CoDeepNEATStrategy(SPACE, ["val_accuracy", "params"], {}, seed,
                                  CoDeepNEATConfig(module_population=8, blueprint_population=4), 6)

    ev = AnalyticGraphEvaluator()
    rec = RecordingStrategy(fresh())
    for _ in range(3):
        rec.tell([evaluate(ev, g) for g in rec.ask(6)])
    ck = Checkpointer(tmp_path / "ck", {"test": 1})
    ck.save(rec, {"next_generation": 3, "generation_log": []})
    doc = ck.load()
    again = replay(fresh(), doc["events"], doc["results"], doc["rng_state"])
    assert again.ask(6) == rec.ask(6)
    assert json.dumps(again.inner.snapshot(), sort_keys=True) == json.dumps(rec.inner.snapshot(), sort_keys=True)


def test_a_search_with_sep_replays_identically_while_the_cores_are_loaded():
    """Replay on a busy machine (issue 17): SEP's edit path search is bounded by counted work,
    so the coevolution proposes the same networks with both cores loaded by other processes."""
    from nas.evaluators import evaluate

    def run() -> list:
        s = CoDeepNEATStrategy(SPACE, ["val_accuracy", "params"], {}, 3,
                               CoDeepNEATConfig(module_population=8, blueprint_population=4), 6)
        ev, asked = AnalyticGraphEvaluator(), []
        for _ in range(4):
            batch = s.ask(6)
            asked += [g.key() for g in batch]
            s.tell([evaluate(ev, g) for g in batch])
        return asked + [json.dumps(s.snapshot(), sort_keys=True)]

    quiet = run()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        loaded = run()
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    assert loaded == quiet


def test_async_keeps_the_members_of_networks_in_flight_so_their_credit_lands():
    """Issue 17: an update while networks are in flight must not lose the modules and blueprints
    they use; when they return, their fitness is credited to those members. A member replaced
    while it is in flight is retired (out of the population, no longer assembled) until then."""
    ev = AnalyticGraphEvaluator()
    s = CoDeepNEATStrategy(SPACE, ["val_accuracy", "params"], {}, 5, CoDeepNEATConfig(module_population=8,
                                                                                        blueprint_population=4), 8)
    credit = s._credit
    landed: list[float | None] = []

    def credit_and_look():  # the fitness retired members of the returning networks get
        credit()
        landed.extend(s.blueprints.retired[bp].fitness for bp in returning_bps if bp in s.blueprints.retired)

    s._credit = credit_and_look
    returning_bps: set[int] = set()
    in_flight = s.ask(8)
    credited = 0
    for _ in range(12):
        done, in_flight = in_flight[:2], in_flight[2:]
        s.tell(LocalPool().evaluate(ev, done))
        for g in in_flight:  # still out: every member it was assembled from is still there
            for bp, mods in s.uses[g]:
                assert bp in s.blueprints.members or bp in s.blueprints.retired
                assert all(m in s.modules.members or m in s.modules.retired for m in mods)
        assert not set(s.blueprints.retired) & set(s.blueprints.members)
        returning = in_flight[:2]
        members = [(bp, mods) for g in returning for bp, mods in s.uses[g]]
        returning_bps = {bp for bp, _ in members}
        s_before = len(s.history)
        s.tell(LocalPool().evaluate(ev, returning))
        in_flight = in_flight[2:] + s.ask(4)
        assert len(s.history) == s_before + 1
        credited += len(members)
        # new networks are assembled from the population only, never from retired members
        for g in in_flight[-4:]:
            for bp, mods in s.uses[g][-1:]:
                assert bp in s.blueprints.members and all(m in s.modules.members for m in mods)
    assert credited > 0
    assert landed and all(f is not None for f in landed)  # retired members were credited on return


def test_async_with_more_networks_in_flight_than_members_still_evolves():
    """Least-used assembly keeps every member in flight once K reaches the population size; the
    populations must still be replaced by offspring (they froze when in-flight members were kept
    in the population), and stay bounded."""
    ev = AnalyticGraphEvaluator()
    cfg = CoDeepNEATConfig(module_population=8, blueprint_population=4)
    s = CoDeepNEATStrategy(SPACE, ["val_accuracy", "params"], {}, 1, cfg, 16)
    in_flight = s.ask(24)
    for _ in range(30):
        done, in_flight = in_flight[:3], in_flight[3:]
        s.tell(LocalPool().evaluate(ev, done))
        in_flight += s.ask(3)
        assert len(s.blueprints.members) <= cfg.blueprint_population + 1
        assert len(s.modules.members) <= cfg.module_population + len(in_flight)  # the rest wait for a result
        assert len(s.blueprints.retired) <= len(in_flight)
    assert s.blueprints._next_member >= 4 + 8  # blueprints born beyond the first four (none before the mend)
    assert s.modules._next_member >= 8 + 32

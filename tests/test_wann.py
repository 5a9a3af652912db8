"""Weight-agnostic networks: the genome and its mutations, the batched evaluator against a
hand-computed network, the ranking rule, REINFORCE on a toy task, and the search end to end."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest
import torch

from nas.genome import Genome, canonical_json
from nas.spaces.wann import WANNSpace
from nas.strategies.wann import WANNStrategy, wann_rank
from nas.wann.network import (ACTIVATIONS, SHARED_WEIGHTS, WannNet, _TorchPlan, compile_plan, forward_numpy,
                              forward_torch)


def _genome(n_in, n_out, hidden, conns, out_act="linear") -> Genome:
    spec = {"inputs": n_in, "outputs": n_out, "out_act": out_act, "hidden": [list(h) for h in hidden],
            "conns": sorted(list(c) for c in conns)}
    return Genome((), "wann", canonical_json(spec))


# ----------------------------------------------------------------------------- genome


@pytest.mark.parametrize("seed", range(6))
def test_every_mutation_sequence_keeps_the_graph_feed_forward(seed):
    space = WANNSpace(6, 3, init_connection_prob=0.3)
    rng = np.random.default_rng(seed)
    g = space.sample(rng)
    spec = space.spec(g)
    assert spec["hidden"] == [] and all(d in space.outputs for _, d in spec["conns"]), "networks start minimal"
    for _ in range(150):
        child = space.mutate(g, rng)
        assert child != g, "a mutation always changes the network"
        space.validate(child)
        graph = space.graph(child)
        assert nx.is_directed_acyclic_graph(graph)
        assert all(graph.in_degree(i) == 0 for i in range(space.n_in + 1)), "nothing feeds an input or the bias"
        assert all(graph.out_degree(o) == 0 for o in space.outputs), "an output feeds nothing"
        g = child
    assert len(space.spec(g)["hidden"]) > 5


def test_mutations_are_seeded_and_do_what_they_say():
    space = WANNSpace(4, 2, mutation={"add_node": 1.0})
    g = _genome(4, 2, [], [(0, 5), (1, 6)])
    a = [space.mutate(g, np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1], "same generator, same child"
    child = space.spec(a[0])
    assert len(child["hidden"]) == 1 and child["hidden"][0][0] == 7 and len(child["conns"]) == 3
    h = child["hidden"][0][0]
    split = [c for c in ([0, 5], [1, 6]) if c not in child["conns"]][0]
    assert [split[0], h] in child["conns"] and [h, split[1]] in child["conns"], "add node splits one connection"

    space = WANNSpace(4, 2, mutation={"change_activation": 1.0})
    g = _genome(4, 2, [[7, "tanh"]], [(0, 7), (7, 5)])
    child = space.spec(space.mutate(g, np.random.default_rng(0)))
    assert child["conns"] == [[0, 7], [7, 5]] and child["hidden"][0][1] != "tanh"

    space = WANNSpace(1, 1, mutation={"add_connection": 1.0})
    g = _genome(1, 1, [[3, "relu"], [4, "abs"]], [(0, 3), (3, 4), (4, 2)])  # 3 -> 4: only 0->4, 0->2, 1->*, 3->2 free
    for s in range(20):
        child = space.mutate(g, np.random.default_rng(s))
        space.validate(child)
        assert [4, 3] not in space.spec(child)["conns"], "a connection closing a cycle is never added"


@pytest.mark.parametrize("spec, match", [
    ({"inputs": 2, "outputs": 1, "hidden": [[4, "relu"], [5, "relu"]], "conns": [[0, 4], [4, 5], [5, 4], [5, 3]]},
     "cycle"),
    ({"inputs": 2, "outputs": 1, "hidden": [[4, "softmax"]], "conns": [[0, 4], [4, 3]]}, "unknown activation"),
    ({"inputs": 2, "outputs": 1, "hidden": [], "conns": [[3, 0]]}, "not an input, the bias or a hidden node"),
    ({"inputs": 2, "outputs": 1, "hidden": [], "conns": [[0, 1]]}, "not a hidden or output node"),
    ({"inputs": 2, "outputs": 1, "hidden": [], "conns": [[0, 3], [0, 3]]}, "twice"),
    ({"inputs": 3, "outputs": 1, "hidden": [], "conns": [[0, 4]]}, "3 inputs"),
    ({"inputs": 2, "outputs": 1, "hidden": [[2, "relu"]], "conns": [[0, 3]]}, "reserved"),
    ({"inputs": 2, "outputs": 1}, "fields"),
])
def test_invalid_genomes_are_refused_by_name(spec, match):
    with pytest.raises(ValueError, match=match):
        WANNSpace(2, 1).validate(Genome((), "wann", canonical_json(spec)))


# ----------------------------------------------------------------------------- evaluation


def test_batched_evaluator_matches_a_hand_computed_network():
    # inputs x0, x1; bias node 2; output 3; hidden 4 (tanh) and 5 (gaussian, fed by 4 and the bias)
    g = _genome(2, 1, [[4, "tanh"], [5, "gaussian"]], [(0, 4), (1, 4), (4, 5), (2, 5), (5, 3), (0, 3)],
                out_act="sigmoid")
    spec = json.loads(g.spec)
    xs = np.array([[0.5, -1.0], [2.0, 0.25], [0.0, 0.0]])

    def by_hand(x0, x1, w):
        h4 = math.tanh(w * x0 + w * x1)
        h5 = math.exp(-0.5 * (w * h4 + w * 1.0) ** 2)
        pre = w * h5 + w * x0
        return (math.tanh(pre / 2) + 1) / 2

    want = np.array([[by_hand(*x, w) for x in xs] for w in SHARED_WEIGHTS])
    plan = compile_plan(spec)
    got = forward_numpy(plan, xs, np.array(SHARED_WEIGHTS))
    assert got.shape == (6, 3, 1)
    np.testing.assert_allclose(got[..., 0], want, rtol=1e-12)
    # per-connection weights (individual) and the torch paths give the same numbers
    per = np.repeat(np.array(SHARED_WEIGHTS)[:, None], len(spec["conns"]), axis=1)
    np.testing.assert_allclose(forward_numpy(plan, xs, per)[..., 0], want, rtol=1e-12)
    t = forward_torch(_TorchPlan(plan), torch.tensor(xs), torch.tensor(per))
    np.testing.assert_allclose(t.numpy()[..., 0], want, rtol=1e-12)
    for w in (-2.0, 0.5):
        net = WannNet(spec, w).double()
        np.testing.assert_allclose(net(torch.tensor(xs)).detach().numpy()[:, 0], want[SHARED_WEIGHTS.index(w)],
                                   rtol=1e-12)
    # one row per weight with its own inputs (control): row k sees batch k
    x3 = np.stack([xs, xs[::-1]])
    out = forward_numpy(plan, x3, np.array([1.0, 2.0]))
    np.testing.assert_allclose(out[1, :, 0], [by_hand(*x, 2.0) for x in xs[::-1]], rtol=1e-12)


def test_grown_networks_agree_with_the_dense_torch_path_whatever_ran_before():
    """Levels of several nodes and activations, read through reused scratch arrays: forward_numpy
    (which reads only each level's sources) against forward_torch (a dense product per level),
    for grown networks evaluated in an order that shrinks and grows the batch between calls."""
    space = WANNSpace(6, 3, activations=ACTIVATIONS, init_connection_prob=0.5)
    rng = np.random.default_rng(3)
    nets = []
    for _ in range(4):
        g = space.sample(rng)
        for _ in range(40):
            g = space.mutate(g, rng)
        nets.append(json.loads(g.spec))
    assert max(len(lv.nodes) for lv in compile_plan(nets[0]).levels[:-1]) > 1
    for spec, batch in zip(nets * 2, (50, 3, 200, 1, 7, 120, 2, 64)):
        plan = compile_plan(spec)
        x = rng.normal(size=(batch, 6))
        w = np.array(SHARED_WEIGHTS)
        per = rng.normal(size=(2, plan.n_conns))
        want = forward_torch(_TorchPlan(plan), torch.tensor(x), torch.tensor(np.repeat(w[:, None], plan.n_conns, 1)))
        np.testing.assert_allclose(forward_numpy(plan, x, w), want.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(forward_numpy(plan, x, per),
                                   forward_torch(_TorchPlan(plan), torch.tensor(x), torch.tensor(per)).numpy(),
                                   rtol=1e-9, atol=1e-12)


def test_every_activation_is_the_papers():
    x = np.linspace(-2, 2, 9)
    want = {"linear": x, "step": (x > 0) * 1.0, "sin": np.sin(np.pi * x), "cos": np.cos(np.pi * x),
            "gaussian": np.exp(-x ** 2 / 2), "tanh": np.tanh(x), "sigmoid": 1 / (1 + np.exp(-x)), "inverse": -x,
            "abs": np.abs(x), "relu": np.maximum(x, 0)}
    assert set(want) == set(ACTIVATIONS)
    for a, y in want.items():
        spec = {"inputs": 1, "outputs": 1, "out_act": a, "hidden": [], "conns": [[0, 2]]}
        np.testing.assert_allclose(forward_numpy(compile_plan(spec), x[:, None], np.array([1.0]))[0, :, 0], y,
                                   atol=1e-12, err_msg=a)


def test_classification_scores_every_weight_in_one_pass(tmp_path):
    from nas.evaluators.wann import WannEvaluator
    from tests.conftest import tiny_config
    from nas import stages
    from nas.backends import backend, task_score_range

    cfg = tiny_config(tmp_path, ["space.kind=wann", "search.objectives=[mean_score, connections]"])
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    ev = backend(cfg).evaluator(cfg)
    assert isinstance(ev, WannEvaluator)
    space = backend(cfg).search_setup(cfg, ev).space
    g = space.sample(np.random.default_rng(0))
    m = ev.metrics(g, 0)
    assert m["connections"] == len(space.spec(g)["conns"]) and m["min_score"] <= m["mean_score"] <= m["max_score"]
    # the same accuracies by a plain per-weight, per-image loop over the torch module
    x, y = ev.task.split("train")
    accs = []
    for w in SHARED_WEIGHTS:
        net = WannNet(space.spec(g), w).double()
        accs.append(float((net(torch.tensor(x)).argmax(1).numpy() == y).mean()))
    assert m["mean_score"] == pytest.approx(np.mean(accs)) and m["max_score"] == pytest.approx(max(accs))

    # evaluation.wann.classify_score: log_likelihood: the mean log softmax probability of the true class
    ll_cfg = cfg.model_copy(deep=True)
    ll_cfg.evaluation.wann.classify_score = "log_likelihood"
    ll_ev = backend(ll_cfg).evaluator(ll_cfg)
    ll = ll_ev.metrics(g, 0)
    lls = []
    for w in SHARED_WEIGHTS:
        net = WannNet(space.spec(g), w).double()
        logp = torch.log_softmax(net(torch.tensor(x)), dim=1).numpy()[np.arange(len(y)), y]
        lls.append(float(np.maximum(logp, -50.0).mean()))
    assert ll["mean_score"] == pytest.approx(np.mean(lls)) and ll["max_score"] == pytest.approx(max(lls))
    assert ll["mean_score"] < 0 and ll["connections"] == m["connections"]
    low, high = task_score_range(ll_ev.task)
    assert (low, high) == (pytest.approx(-2 * np.log(ll_ev.task.n_out)), 0.0)

    # ensemble_score: the same measure of the weights' ensemble (their softmax probabilities averaged)
    probs = np.stack([torch.softmax(WannNet(space.spec(g), w).double()(torch.tensor(x)), dim=1).numpy()
                      for w in SHARED_WEIGHTS]).mean(axis=0)
    assert m["ensemble_score"] == pytest.approx(float((probs.argmax(1) == y).mean()))
    assert ll["ensemble_score"] == pytest.approx(float(np.maximum(np.log(probs[np.arange(len(y)), y]), -50).mean()))
    assert ll["ensemble_score"] >= ll["mean_score"]  # the log of a mean is at least the mean of the logs


def test_the_ensemble_module_and_its_onnx_vote_as_the_search_scores(tmp_path):
    """WannEnsemble (the select stage's ensemble export): softmax of its output is the shared
    weights' mean probability, its argmax is the vote classify_scores counts, and the ONNX file
    gives the same."""
    import onnxruntime as ort

    from nas.export import export_onnx
    from nas.wann.network import WannEnsemble
    from nas.wann.tasks import classify_scores

    space, rng = WANNSpace(12, 4), np.random.default_rng(3)
    g = space.sample(rng)
    for _ in range(25):
        g = space.mutate(g, rng)
    spec = space.spec(g)
    assert spec["hidden"], "the test needs hidden nodes"
    x = rng.normal(size=(200, 12))
    y = rng.integers(0, 4, size=200)
    out = forward_numpy(compile_plan(spec), x, np.array(SHARED_WEIGHTS))
    probs = np.exp(out - out.max(2, keepdims=True))
    probs = (probs / probs.sum(2, keepdims=True)).mean(axis=0)
    ens = WannEnsemble(spec, SHARED_WEIGHTS).double()
    with torch.no_grad():
        got = ens(torch.tensor(x))
    assert np.allclose(torch.softmax(got, 1).numpy(), probs, atol=1e-12)
    vote = classify_scores(out, y)[1]
    assert float((got.argmax(1).numpy() == y).mean()) == vote
    assert 0 < vote < 1, "the check would not tell a vote from its negation"

    path = export_onnx(WannEnsemble(spec, SHARED_WEIGHTS), (12,), tmp_path / "e.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = sess.run(None, {"input": x.astype(np.float32)})[0]
    assert np.abs(onnx_out - got.numpy()).max() < 1e-4
    assert (onnx_out.argmax(1) == got.argmax(1).numpy()).mean() > 0.99  # float32 may flip a near tie
    with pytest.raises(ValueError, match="at least one shared weight"):
        WannEnsemble(spec, [])


def test_log_likelihood_floors_each_image_and_non_finite_outputs():
    from nas.wann.network import compile_plan
    from nas.wann.tasks import LOG_LIKELIHOOD_FLOOR, log_likelihoods

    # the one input (node 0) to the first of two linear outputs (nodes 2, 3): logits (w * x, 0)
    spec = {"inputs": 1, "outputs": 2, "out_act": "linear", "hidden": [], "conns": [[0, 2]]}
    x, y = np.array([[1.0], [1.0]]), np.array([0, 1])
    with np.errstate(all="ignore"):  # the infinite weight makes 0 * inf in the forward pass
        got = log_likelihoods(compile_plan(spec), x, y, np.array([0.0, 1e6, np.inf]))
    assert got[0] == pytest.approx(np.log(0.5))  # both logits 0: a fair coin on each image
    assert got[1] == pytest.approx((0.0 + LOG_LIKELIHOOD_FLOOR) / 2)  # right with certainty once, floored once
    assert np.isfinite(got).all() and got[2] <= 0

    # the ensemble's term: log of the rows' mean probability; a non-finite row makes the image's term the floor
    from nas.wann.tasks import classify_scores

    out = np.array([[[0.0, 0.0], [np.nan, 0.0]], [[np.log(3.0), 0.0], [0.0, 0.0]]])  # 2 rows, 2 images, 2 classes
    with np.errstate(all="ignore"):
        per, ens = classify_scores(out, np.array([0, 1]), "log_likelihood")
    assert per == pytest.approx([(np.log(0.5) + LOG_LIKELIHOOD_FLOOR) / 2, (np.log(0.75) + np.log(0.5)) / 2])
    assert ens == pytest.approx((np.log((0.5 + 0.75) / 2) + LOG_LIKELIHOOD_FLOOR) / 2)


# ----------------------------------------------------------------------------- ranking


def test_ranking_rule_is_non_dominated_sorting_on_the_drawn_pair():
    ms = [{"mean_score": 0.9, "max_score": 0.95, "connections": 50},   # best mean
          {"mean_score": 0.5, "max_score": 0.99, "connections": 3},    # best max, fewest connections
          {"mean_score": 0.4, "max_score": 0.45, "connections": 40},   # dominated on both pairs
          None]                                                         # failed
    r_conn = wann_rank(ms, use_connections=True)
    r_max = wann_rank(ms, use_connections=False)
    assert set(r_conn[:2]) == {0, 1} and r_conn[2] == 2 and r_conn[3] == 3
    assert set(r_max[:2]) == {0, 1} and r_max[2] == 2 and r_max[3] == 3
    ms2 = [{"mean_score": 0.6, "max_score": 0.7, "connections": 10},
           {"mean_score": 0.5, "max_score": 0.9, "connections": 20}]
    assert list(wann_rank(ms2, True)) == [0, 1], "(mean, connections): 0 dominates 1"
    assert sorted(wann_rank(ms2, False)) == [0, 1]


def test_the_search_ranks_on_the_ensemble_when_its_objectives_say_so(tmp_path):
    """ensemble_score before (or instead of) mean_score in search.objectives: the ranking puts the
    better ensemble first where the mean over the weights says the opposite; the select stage then
    chooses on the validation ensemble; control tasks refuse it."""
    from nas.genome import EvaluationResult
    from tests.conftest import tiny_config

    ms = [{"mean_score": -1.0, "ensemble_score": -0.9, "max_score": -0.5, "connections": 10},
          {"mean_score": -0.8, "ensemble_score": -0.95, "max_score": -0.5, "connections": 10}]
    assert list(wann_rank(ms, True)) == [1, 0] and list(wann_rank(ms, True, "ensemble_score")) == [0, 1]
    space = WANNSpace(2, 1)
    a, b = _genome(2, 1, [], [(0, 3)]), _genome(2, 1, [], [(1, 3)])
    for objectives, first in ((["mean_score", "connections"], b), (["ensemble_score", "connections"], a),
                              (["ensemble_score", "mean_score", "connections"], a)):
        s = WANNStrategy(space, objectives, {}, seed=0)
        s.archive.add([EvaluationResult(a, ms[0]), EvaluationResult(b, ms[1])])
        assert s._rank([a, b])[0] == first, objectives

    cfg = tiny_config(tmp_path, ["space.kind=wann", "search.objectives=[ensemble_score, connections]"])
    from nas.wann.select import search_score

    assert search_score(cfg) == "ensemble_score"
    with pytest.raises(Exception, match="ensemble_score .* control task"):
        tiny_config(tmp_path, ["space.kind=wann", "evaluation.wann.task=swingup",
                               "search.objectives=[ensemble_score, connections]"])
    with pytest.raises(Exception, match="must include mean_score .* or ensemble_score"):
        tiny_config(tmp_path, ["space.kind=wann", "search.objectives=[max_score, connections]"])


def test_the_connection_objective_is_drawn_with_its_probability():
    """Rankings use (mean, connections) with probability conn_rank_prob: a pair where the two
    rules disagree shows which was drawn."""
    from nas.genome import EvaluationResult

    space = WANNSpace(2, 1)
    a, b = _genome(2, 1, [], [(0, 3)]), _genome(2, 1, [], [(0, 3), (1, 3)])
    s = WANNStrategy(space, ["mean_score", "connections"], {}, seed=0, conn_rank_prob=0.8)
    s.archive.add([EvaluationResult(a, {"mean_score": 0.5, "max_score": 0.5, "connections": 1}),
                   EvaluationResult(b, {"mean_score": 0.5, "max_score": 0.9, "connections": 2})])
    firsts = [s._rank([b, a])[0] for _ in range(2000)]
    share = np.mean([f == a for f in firsts])  # a first: fewer connections (b dominates a on mean/max)
    assert 0.77 < share < 0.83


# ----------------------------------------------------------------------------- REINFORCE


class _Bandit:
    """A one-step control task: observation 1, reward -(a - 2)^2 (best action 2)."""

    kind = "toy"
    n_in, n_out = 1, 1

    def returns(self, act, n_rows, seed, rollouts=None, rewards=None, same_starts=False):
        obs = np.ones((n_rows, rollouts or 1, 1))
        a = np.asarray(act(obs)).reshape(n_rows, -1)
        r = -(a - 2.0) ** 2
        if rewards is not None:
            rewards.append(r.reshape(-1))
        return r


def test_reinforce_moves_weights_up_the_return_gradient():
    from nas.wann.tune import reinforce

    spec = {"inputs": 1, "outputs": 1, "out_act": "linear", "hidden": [], "conns": [[0, 2]]}
    one = reinforce(_Bandit(), spec, 0.5, iterations=1, lr=0.05, sigma=0.5, episodes=64, seed=0)
    assert one[0] > 0.5, "one step from w=0.5 moves towards the best action 2"
    w = reinforce(_Bandit(), spec, 0.5, iterations=150, lr=0.05, sigma=0.5, episodes=32, seed=0)
    assert abs(w[0] - 2.0) < 0.3
    again = reinforce(_Bandit(), spec, 0.5, iterations=150, lr=0.05, sigma=0.5, episodes=32, seed=0)
    assert np.array_equal(w, again), "seeded"
    # with validation the best weights seen are kept: never worse than the start on validation
    kept = reinforce(_Bandit(), spec, 2.0, iterations=20, lr=0.5, sigma=0.5, episodes=4, seed=0, val_seed=1)
    assert kept[0] == 2.0, "the start (the optimum) beats every later iterate of a too-large step"


def test_cmaes_tuning_finds_the_best_action_and_keeps_the_best_on_validation():
    from nas.wann.tune import cmaes

    spec = {"inputs": 1, "outputs": 1, "out_act": "linear", "hidden": [], "conns": [[0, 2]]}
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    w = cmaes(_Bandit(), spec, 0.5, iterations=40, sigma=0.5, popsize=8, episodes=2, seed=0)
    assert abs(w[0] - 2.0) < 0.05, w
    assert np.array_equal(np.random.get_state()[1], before), "cma must not reseed NumPy's global generator"
    assert np.array_equal(w, cmaes(_Bandit(), spec, 0.5, iterations=40, sigma=0.5, popsize=8, episodes=2, seed=0))
    kept = cmaes(_Bandit(), spec, 2.0, iterations=5, sigma=3.0, popsize=4, episodes=1, seed=0, val_seed=1, val_every=1)
    assert kept[0] == 2.0, "the start (the optimum) is kept against every later, worse mean"


def test_cmaes_rows_share_start_states_on_swingup():
    from nas.wann.tasks import make_task

    from nas.config import apply_overrides, from_dict

    cfg = from_dict(apply_overrides({}, ["evaluation.wann.task=swingup", "evaluation.wann.max_steps=5"]))
    task = make_task(cfg.evaluation.wann, "unused")
    starts = []
    task.returns(lambda o: starts.append(o.copy()) or np.zeros(o.shape[:2]), 3, 7, 4, same_starts=True)
    assert np.array_equal(starts[0][0], starts[0][1]) and np.array_equal(starts[0][0], starts[0][2])
    task.returns(lambda o: starts.append(o.copy()) or np.zeros(o.shape[:2]), 3, 7, 4)
    assert not np.array_equal(starts[-1][0], starts[-1][1]), "without it every episode has its own start"


def test_cmaes_tuner_is_rejected_for_classification():
    from nas.config import ConfigError, apply_overrides, from_dict

    with pytest.raises(ConfigError, match="tuner cmaes"):
        from_dict(apply_overrides({}, ["evaluation.wann.tuner=cmaes"]))
    cfg = from_dict(apply_overrides({}, ["evaluation.wann.task=swingup", "evaluation.wann.tuner=cmaes"]))
    assert cfg.evaluation.wann.tuner == "cmaes"


def test_gradient_tuning_beats_the_shared_weight_on_a_linear_problem():
    from nas.wann.tune import best_shared_weight, tune_classifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] - 3 * x[:, 1] > 0).astype(int)  # needs weights of different sign and size
    spec = {"inputs": 2, "outputs": 2, "out_act": "linear", "hidden": [], "conns": [[0, 3], [1, 3], [0, 4], [1, 4]]}
    plan = compile_plan(spec)

    def acc(w):
        return (forward_numpy(plan, x, w).argmax(2) == y).mean(axis=1)

    w0, shared = best_shared_weight(acc)
    tuned = tune_classifier(spec, x, y, w0, steps=200, lr=0.1, seed=0)
    assert acc(tuned[None, :])[0] > max(shared, 0.9)


def test_gradient_tuning_keeps_the_weights_that_score_best_on_validation():
    """Validation images labelled against the training rule: every step that fits the training
    images loses on them, so tuning keeps its start; without validation it keeps the last step."""
    from nas.wann.tune import tune_classifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] - 3 * x[:, 1] > 0).astype(int)
    spec = {"inputs": 2, "outputs": 2, "out_act": "linear", "hidden": [], "conns": [[0, 3], [1, 3], [0, 4], [1, 4]]}
    plan = compile_plan(spec)
    xv = rng.normal(size=(200, 2))
    yv = 1 - (xv[:, 0] - 3 * xv[:, 1] > 0).astype(int)

    def val_acc(w):
        return float((forward_numpy(plan, xv, np.asarray(w)[None, :]).argmax(2)[0] == yv).mean())

    last = tune_classifier(spec, x, y, 0.5, steps=200, lr=0.1, seed=0, val_every=0)
    kept = tune_classifier(spec, x, y, 0.5, steps=200, lr=0.1, seed=0, val=(xv, yv), val_every=10)
    assert val_acc(last) < 0.2 < val_acc(np.full(4, 0.5))
    assert np.array_equal(kept, np.full(4, 0.5))
    # on a validation set that agrees with training, the kept weights are as good as the last ones
    agree = tune_classifier(spec, x, y, 0.5, steps=200, lr=0.1, seed=0, val=(xv, 1 - yv), val_every=10)
    assert 1 - val_acc(agree) >= 1 - val_acc(last) - 1e-9
    # weight decay pulls the tuned weights towards zero
    decayed = tune_classifier(spec, x, y, 0.5, steps=200, lr=0.1, seed=0, val_every=0, weight_decay=0.5)
    assert np.abs(decayed).sum() < np.abs(last).sum()


def test_gradient_tuning_with_input_noise_is_seeded_and_regularises():
    """Gaussian noise on the training inputs: the same seed gives the same weights, another seed
    other weights; on separable data (where plain cross-entropy grows the weights without bound)
    the noise acts as a weight penalty (Bishop, 1995), so the tuned weights stay smaller."""
    from nas.wann.tune import tune_classifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] - 3 * x[:, 1] > 0).astype(int)
    spec = {"inputs": 2, "outputs": 2, "out_act": "linear", "hidden": [], "conns": [[0, 3], [1, 3], [0, 4], [1, 4]]}
    plain = tune_classifier(spec, x, y, 0.5, steps=300, lr=0.1, seed=0, val_every=0)
    assert np.array_equal(plain, tune_classifier(spec, x, y, 0.5, steps=300, lr=0.1, seed=0, val_every=0,
                                                 input_noise=0.0))
    noisy = tune_classifier(spec, x, y, 0.5, steps=300, lr=0.1, seed=0, val_every=0, input_noise=1.0)
    assert np.array_equal(noisy, tune_classifier(spec, x, y, 0.5, steps=300, lr=0.1, seed=0, val_every=0,
                                                 input_noise=1.0))
    assert not np.array_equal(noisy, tune_classifier(spec, x, y, 0.5, steps=300, lr=0.1, seed=1, val_every=0,
                                                     input_noise=1.0))
    assert np.abs(noisy).sum() < 0.8 * np.abs(plain).sum()
    plan = compile_plan(spec)
    assert (forward_numpy(plan, x, noisy[None, :]).argmax(2)[0] == y).mean() > 0.9  # still fits the rule
    with pytest.raises(ValueError, match="input_noise"):
        tune_classifier(spec, x, y, 0.5, steps=10, lr=0.1, seed=0, input_noise=-0.1)


# ----------------------------------------------------------------------------- end to end


def test_digits_example_runs_end_to_end_on_prefect_and_dask_with_exports(tmp_path, evonas_bin, runs_api):
    """`evonas run --params examples/wann_digits.yaml`: a Prefect flow run, candidates scored on a
    Dask LocalCluster, a front, tuned networks tested and exported (genome, ONNX twice, drawing)."""
    import subprocess

    from tests.conftest import ROOT

    sets = ["search.population=12", "search.generations=2", "evaluation.wann.tune_steps=20"]
    proc = subprocess.run([evonas_bin, "run", "--params", str(ROOT / "examples/wann_digits.yaml"),
                           *[a for s in sets for a in ("--set", s)]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**__import__("os").environ, "PREFECT_HOME": str(tmp_path / ".prefect"),
                                            "PREFECT_API_URL": runs_api})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Dask: tcp://127.0.0.1" in out and "chosen by validation" in out
    metrics = json.loads((tmp_path / "reports/wann_digits/metrics.json").read_text())
    assert metrics["n_evaluated"] == 36 and metrics["metric"] == "accuracy" and metrics["reported_model"]
    assert 0 < metrics["test_tuned_weights"] <= 1 and 0 <= metrics["test_ensemble"] <= 1
    pops = sorted((tmp_path / "artifacts/wann_digits/search/populations").glob("gen_*.parquet"))
    assert len(pops) == 3, "a population snapshot per generation"
    models = tmp_path / "artifacts/wann_digits/select/models"
    for m in metrics["selected_models"]:
        card = json.loads((models / f"{m['candidate_id']}.json").read_text())
        WANNSpace(64, 10).validate(Genome((), "wann", canonical_json(card["genome"])))
        assert max(card["files"]["onnx_max_abs_diff"][k] for k in ("shared", "tuned", "ensemble")) < 1e-4
        for f in ("onnx_shared", "onnx_tuned", "onnx_ensemble", "drawing"):
            assert (models / card["files"][f]).stat().st_size > 0
        assert len(card["random_shared"]["per_weight"]) == 6 and card["best_shared_weight"] != 0
    assert (tmp_path / "reports/wann_digits/pareto.png").is_file()
    # the benchmarks' helper finds the reported network again, and tuning it as the select stage
    # does (the example's input noise, seeded by the candidate) gives the same weights
    import sys

    from nas.genome import candidate_seed
    from nas.wann.select import tune_selected_classifier
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from wann_lineages import reported_network

    n = reported_network(tmp_path, ROOT / "examples/wann_digits.yaml", sets)
    assert n["cfg"].evaluation.wann.tune_input_noise > 0
    card = json.loads((models / f"{metrics['reported_model']}.json").read_text())
    assert n["w_best"] == card["best_shared_weight"]
    tuned = tune_selected_classifier(n["task"], n["spec"], n["w_best"], n["cfg"].evaluation.wann,
                                     candidate_seed(n["cfg"].seed, n["genome"]))
    assert np.array_equal(tuned, np.asarray(card["tuned_weight_values"]))
    # the exported ensemble, run by onnxruntime on the test images, scores what the card reports
    import onnxruntime as ort

    xt, yt = n["task"].split("test")
    sess = ort.InferenceSession(str(models / card["files"]["onnx_ensemble"]), providers=["CPUExecutionProvider"])
    votes = sess.run(None, {"input": xt.astype(np.float32)})[0].argmax(1)
    assert float((votes == yt).mean()) == pytest.approx(card["ensemble"]["test"], abs=2 / len(yt))


def test_swingup_search_on_dask_then_reinforce_tuning_and_exports(tmp_path):
    """Control end to end in this process: swing-up rollouts scored on a Dask LocalCluster, the
    select stage choosing on validation rollouts, REINFORCE tuning, test rollouts, exports."""
    from nas import stages
    from tests.conftest import ROOT, tiny_config

    cfg = tiny_config(tmp_path, ["space.kind=wann", "search.objectives=[mean_score, connections]",
                                 "evaluation.wann.task=swingup", "evaluation.wann.max_steps=60",
                                 "evaluation.wann.rollouts=2", "evaluation.wann.tune_steps=3",
                                 "evaluation.wann.reinforce_episodes=4", "evaluation.wann.test_rollouts=4",
                                 "space.wann.init_connection_prob=0.5", "selection.rules=[best_accuracy]"])
    assert (ROOT / "examples/wann_swingup.yaml").is_file()
    summary = stages.run_search(cfg)
    assert summary["n_evaluated"] == 18 and summary["n_failed"] == 0
    metrics = stages.select_own(cfg)
    assert metrics["metric"] == "return" and "tuned weights" in metrics["headline"]
    card = json.loads((tmp_path / "artifacts/select/models" / f"{metrics['reported_model']}.json").read_text())
    assert 0 <= card["random_shared"]["mean"] <= 60 and len(card["tuned_weight_values"]) == card["connections"]
    assert card["tuned_weights"]["mean"] == metrics["test_tuned_weights"]
    assert card["files"]["onnx_max_abs_diff"]["tuned"] < 1e-4
    # the same rollouts again: seeded by the base seed and the genome, never by the worker
    again = stages.select_own(cfg)
    assert again["test_tuned_weights"] == metrics["test_tuned_weights"]


def test_a_search_on_the_ensemble_score_ranks_fronts_and_selects_on_it(tmp_path):
    """search.objectives [ensemble_score, connections] end to end in this process: every scored
    network carries its ensemble's score, the front is non-dominated on it, and best_accuracy picks
    the front member with the best validation ensemble."""
    import pandas as pd

    from nas import stages
    from nas.objectives import to_minimise
    from nas.pareto import non_dominated
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, ["space.kind=wann", "search.objectives=[ensemble_score, connections]",
                                 "evaluation.wann.classify_score=log_likelihood", "evaluation.wann.tune_steps=5",
                                 "space.wann.init_connection_prob=0.3", "selection.rules=[best_accuracy]"])
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    summary = stages.run_search(cfg)
    assert summary["n_failed"] == 0
    from nas.runners import read_populations

    df = read_populations(tmp_path / "artifacts/search/populations")
    ok = df[df.status == "ok"]
    assert (ok.ensemble_score >= ok.mean_score - 1e-12).all(), "log of a mean >= mean of the logs"
    metrics = stages.select_own(cfg)
    front = pd.read_csv(tmp_path / "artifacts/select/pareto.csv")
    F = np.array([to_minimise(r, cfg.search.objectives) for r in front.to_dict("records")])
    assert len(non_dominated(F)) == len(front) and front.val_ensemble.between(0, 1).all()
    pick = front[front.selected_by.fillna("").str.contains("best_accuracy")]
    assert len(pick) == 1 and pick.val_ensemble.iloc[0] == front.val_ensemble.max()
    assert metrics["reported_model"] == pick.candidate_id.iloc[0] and 0 <= metrics["test_ensemble"] <= 1


def test_gymnasium_tasks_roll_out_every_weight_and_refuse_unknown_ids():
    from nas.wann.tasks import GymTask, TaskError, make_env

    task = GymTask("BipedalWalker-v3", rollouts=2, max_steps=15)
    assert (task.n_in, task.n_out) == (24, 4)
    spec = {"inputs": 24, "outputs": 4, "out_act": "tanh", "hidden": [], "conns": [[s, 25 + s % 4] for s in range(25)]}
    perf = task.performance(compile_plan(spec), np.array([-1.0, 1.0]), seed=3)
    assert perf.shape == (2,) and np.isfinite(perf).all()
    assert np.array_equal(perf, task.performance(compile_plan(spec), np.array([-1.0, 1.0]), seed=3))
    with pytest.raises(TaskError, match="NoSuchEnv-v0"):
        make_env("NoSuchEnv-v0")
    with pytest.raises(TaskError, match="Box observation and action"):
        make_env("CartPole-v1")  # discrete actions


def test_a_genome_for_other_images_is_refused_naming_the_sizes(tmp_path):
    from nas import stages
    from nas.wann.select import score_file
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, ["space.kind=wann", "search.objectives=[mean_score, connections]"])
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"inputs": 256, "outputs": 10, "hidden": [], "conns": [[0, 257]]}))
    with pytest.raises(ValueError, match=r"256 inputs.*1x8x8, flatten to 64"):
        score_file(cfg, path)
    path.write_text(json.dumps({"inputs": 64, "outputs": 10, "hidden": [], "conns": [[3, 70]]}))
    res = score_file(cfg, path)
    assert len(res["val_per_weight"]) == 6 and res["best_shared_weight"] != 0


def test_digits_example_runs_under_dvc(tmp_path, runs_api):
    """The WANN example as DVC users run it: `evonas config` makes it the complete params.yaml,
    `dvc repro` runs prepare, records that pretrain and surrogate were skipped, searches and selects
    into the example's own folders; a second `dvc repro` has nothing to do."""
    from tests.conftest import repo_copy, sh

    repo, env = repo_copy(tmp_path, [], runs_api)
    shrink = ["search.population=8", "search.generations=1", "evaluation.wann.tune_steps=5", "selection.rules=[knee]"]
    sh(["evonas", "config", "--params", "examples/wann_digits.yaml", *[a for s in shrink for a in ("--set", s)],
        "--out", "params.yaml", "--force"], repo, env)
    out = sh(["dvc", "repro"], repo, env)
    assert "Running stage 'select'" in out
    metrics = json.loads((repo / "reports/wann_digits/metrics.json").read_text())
    assert metrics["n_evaluated"] == 16 and metrics["selected_models"][0]["selected_by"] == ["knee"]
    assert (repo / "artifacts/wann_digits/select/models" / f"{metrics['reported_model']}.tuned.onnx").is_file()
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()

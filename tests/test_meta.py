"""Meta-learning components (issue 19): activation expression trees, TaylorGLO losses,
augmentation policies, their spaces, CMA-ES, and their use by every training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nas.meta import augment as aug
from nas.meta import expr
from nas.meta.components import ComponentError, Recipe, resolve
from nas.meta.taylor import TaylorGLOLoss, cross_entropy_theta, numpy_loss, taylor_f

# ------------------------------------------------------------------------------ expression trees

KNOWN = {
    "x * sigmoid(x)": lambda x: x / (1 + np.exp(-x)),
    "max(x, tanh(x))": lambda x: np.maximum(x, np.tanh(x)),
    "relu(x) - square(sin(x))": lambda x: np.maximum(x, 0) - np.sin(x) ** 2,
    "min(abs(x), softplus(-x)) + erf(x)": None,  # checked against torch below
    "param(1.5, tanh(x)) * exp(neg(square(x)))": lambda x: 1.5 * np.tanh(x) * np.exp(-x * x),
}


@pytest.mark.parametrize("text", sorted(KNOWN))
def test_trees_evaluate_like_numpy_and_round_trip_through_text_and_json(text):
    tree = expr.parse(text)
    assert expr.parse(expr.to_text(tree)) == tree and json.loads(json.dumps(tree)) == tree
    x = np.linspace(-5, 5, 101)
    got = expr.evaluate_numpy(tree, x)
    ref = KNOWN[text]
    if ref is not None:
        np.testing.assert_allclose(got, ref(x), rtol=1e-12, atol=1e-12)
    t = expr.evaluate_torch(tree, torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(t.numpy(), got, rtol=1e-10, atol=1e-12)


def test_operator_precedence_in_the_text_form():
    t = expr.parse("(x + tanh(x)) * x - (x - x * x)")
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(expr.evaluate_numpy(t, x), (x + np.tanh(x)) * x - (x - x * x))
    assert expr.parse(expr.to_text(t)) == t


@pytest.mark.parametrize("text,why", [("sin(x) - sin(x)", "constant"), ("exp(exp(exp(exp(x))))", "not finite"),
                                      ("relu(neg(abs(x)))", "constant")])
def test_degenerate_trees_are_rejected_before_training(text, why):
    assert why in expr.degenerate(expr.parse(text))
    with pytest.raises(ComponentError, match="unusable"):
        resolve("activation", text)


@pytest.mark.parametrize("bad", ["foo(x)", "x + 1", "y", "max(x)", "import os", "x.__class__"])
def test_malformed_activation_text_names_the_problem(bad):
    with pytest.raises(expr.TreeError):
        expr.parse(bad)


def test_mutation_keeps_trees_within_limits_and_changes_them():
    rng = np.random.default_rng(0)
    tree = expr.parse("relu(x)")
    seen = set()
    for _ in range(200):
        child = expr.mutate(tree, rng, list(expr.UNARY), list(expr.BINARY), max_depth=4, max_size=7)
        expr.validate(child)
        assert expr.depth(child) <= 4 and expr.size(child) <= 7 and child != tree
        seen.add(expr.to_text(child))
        tree = child
    assert len(seen) > 50


def test_an_evolved_activation_trains_inside_a_network_and_learns_its_scale():
    act = expr.EvolvedActivation(expr.parse("param(0.5, x) * sigmoid(x)"))
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), act, torch.nn.Linear(16, 3))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, :3] ** 2).argmax(1)  # a non-linear rule: a linear model cannot fit it
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    first = None
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first and act.scales[0].item() != 0.5


def test_autoinit_treats_an_evolved_activation_as_one_elementwise_activation():
    from nas.autoinit import autoinit

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), expr.EvolvedActivation(expr.parse("x * sigmoid(x)")),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(8, 4))
    rep = autoinit(net, (1, 8, 8))
    assert rep.applied and rep.unknown_ops == []
    assert [li.name for li in rep.layers] == ["0", "2", "5"]  # the activation is one leaf, not traced into


# ------------------------------------------------------------------------------ TaylorGLO


def test_taylor_loss_at_the_cross_entropy_coefficients_is_the_expansion_of_cross_entropy():
    a, b = 0.5, 0.5
    theta = cross_entropy_theta(a, b)
    # f is the third-order Taylor polynomial of y log x at (a, b), without its terms in y alone
    for x, y in [(0.45, 1.0), (0.55, 0.0), (0.6, 0.8), (0.5, 0.5)]:
        exact = y * np.log(x) - (y * np.log(a))  # the y-only terms: g(a, y) = y log a
        assert taylor_f(x, y, theta) == pytest.approx(exact, abs=5e-3)
    # and it pushes the true class up like cross-entropy does
    logits = torch.zeros(4, 3, requires_grad=True)
    target = torch.tensor([0, 1, 2, 0])
    TaylorGLOLoss(theta)(logits, target).backward()
    ce = torch.zeros(4, 3, requires_grad=True)
    torch.nn.functional.cross_entropy(ce, target).backward()
    assert torch.isfinite(logits.grad).all()
    assert (torch.sign(logits.grad) == torch.sign(ce.grad)).all()


def test_taylor_loss_matches_numpy_and_has_finite_gradients_everywhere():
    rng = np.random.default_rng(0)
    for _ in range(5):
        theta = rng.normal(0, 2, 8).tolist()
        logits = torch.tensor(rng.normal(0, 5, (6, 10)), requires_grad=True)
        target = torch.tensor(rng.integers(0, 10, 6))
        loss = TaylorGLOLoss(theta)(logits, target)
        assert loss.item() == pytest.approx(numpy_loss(torch.softmax(logits, 1).detach().numpy(), target.numpy(),
                                                       theta), rel=1e-9)
        loss.backward()
        assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="8 coefficients"):
        TaylorGLOLoss([1.0, 2.0])


# ------------------------------------------------------------------------------ augmentation


@pytest.mark.parametrize("op", sorted(aug.OPS))
def test_each_augmentation_keeps_shapes_is_seeded_and_is_the_identity_at_magnitude_0(op):
    x = torch.randn(6, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    a = aug.apply_op(x, op, 0.7, torch.Generator().manual_seed(3))
    b = aug.apply_op(x, op, 0.7, torch.Generator().manual_seed(3))
    c = aug.apply_op(x, op, 0.7, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    assert torch.equal(aug.apply_op(x, op, 0.0, torch.Generator().manual_seed(3)), x)
    tiny = aug.apply_op(x, op, 1e-6, torch.Generator().manual_seed(3))
    assert torch.allclose(tiny, x, atol=1e-4)  # and magnitude moves it continuously from there


def test_a_policy_applies_each_entry_with_its_probability():
    x = torch.randn(400, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = aug.apply_policy(x, [["noise", 3, 10]], torch.Generator().manual_seed(0))
    changed = (out != x).flatten(1).any(1).float().mean()
    assert 0.22 < float(changed) < 0.38
    assert torch.equal(aug.apply_policy(x, [["noise", 0, 10], ["shift", 10, 0]], torch.Generator()), x)
    for bad in ([["blur", 5, 5]], [["shift", 11, 5]], [["shift", 5]], "shift"):
        with pytest.raises(aug.PolicyError):
            aug.check_policy(bad)


def test_a_schedule_applies_each_phase_for_its_share_of_training():
    sched = aug.ScheduledAugmentation([[["noise", 0, 10]], [["noise", 10, 10]], [["contrast", 10, 10]]])
    assert [sched.phase(p) for p in (0.0, 0.2, 0.34, 0.66, 0.67, 0.999, 1.0)] == [0, 0, 1, 1, 2, 2, 2]
    x = torch.randn(16, 1, 8, 8)
    assert torch.equal(sched(x, torch.Generator().manual_seed(0), 0.1), x)  # phase 1 changes nothing
    noisy = sched(x, torch.Generator().manual_seed(0), 0.5)
    assert not torch.equal(noisy, x) and torch.equal(noisy, aug.apply_policy(x, [["noise", 10, 10]],
                                                                             torch.Generator().manual_seed(0)))
    # values: a policy or a schedule, round-tripping through the component check and text
    assert aug.check_value({"phases": [[["shift", 5, 3]], [["rotate", 2, 9]]]}) == \
        {"phases": [[["shift", 5, 3]], [["rotate", 2, 9]]]}
    assert "phase 2/2: rotate(p=0.2, m=0.9)" in aug.value_text({"phases": [[["shift", 5, 3]], [["rotate", 2, 9]]]})
    for bad in ({"phases": []}, {"phases": [[["blur", 1, 1]]]}, {"policy": [], "phases": []}, {"schedule": []}):
        with pytest.raises(aug.PolicyError):
            aug.check_value(bad)
    assert aug.from_value({"phases": [[], []]}) is None and aug.from_value({"policy": []}) is None


def test_the_augmentation_space_searches_schedules_with_pba_moves():
    from nas.config import MetaSpaceConfig
    from nas.genome import Genome
    from nas.spaces.meta import AugmentationSpace

    space = AugmentationSpace(MetaSpaceConfig(augment_phases=3, augment_max_ops=2), [4, 8])
    rng = np.random.default_rng(0)
    pop = [space.sample(rng) for _ in range(8)]
    copies = 0
    for g in pop:
        space.validate(g)
        assert len(g.payload()["phases"]) == 3
        for _ in range(10):
            child = space.mutate(g, rng)
            space.validate(child)
            a, b = g.payload()["phases"], child.payload()["phases"]
            assert child != g and sum(x != y for x, y in zip(a, b)) == 1  # one phase moves at a time
            i = next(k for k in range(3) if a[k] != b[k])
            copies += any(b[i] == a[j] for j in (i - 1, i + 1) if 0 <= j < 3)
        space.validate(space.crossover(g, pop[0], rng))
    assert copies > 0  # PBA's exploit step: a phase takes its neighbour's policy
    with pytest.raises(ValueError, match="3 phase"):
        space.validate(Genome((), "augmentation", '{"phases":[[["shift",5,3]]]}'))
    one = AugmentationSpace(MetaSpaceConfig(), [4, 8]).sample(rng)
    assert set(one.payload()) == {"policy"}  # one phase: a plain policy, as before


# ------------------------------------------------------------------------------ spaces, CMA-ES


def test_cma_es_is_seeded_and_moves_towards_better_coefficients():
    from nas.config import MetaSpaceConfig
    from nas.genome import EvaluationResult
    from nas.spaces.meta import LossSpace
    from nas.strategies.cma_es import CMAESStrategy

    space = LossSpace(MetaSpaceConfig())
    target = np.array(cross_entropy_theta()) + 1.0

    def run(seed):
        s = CMAESStrategy(space, ["val_accuracy"], {}, seed, popsize=8, sigma0=0.5)
        asked = []
        for _ in range(25):
            gs = s.ask(8)
            asked.append(gs)
            s.tell([EvaluationResult(g, {"val_accuracy": float(-np.sum((space.vector(g) - target) ** 2))})
                    for g in gs])
        return s, asked

    a, asked_a = run(0)
    _, asked_b = run(0)
    _, asked_c = run(1)
    assert asked_a == asked_b and asked_a != asked_c
    start = np.sum((space.x0() - target) ** 2)
    assert np.sum((a.mean - target) ** 2) < 0.1 * start


def test_component_params_name_their_problem():
    from nas.config import ConfigError, load_config

    for sets, msg in [(["evaluation.loss=mse"], "evaluation.loss"), (["space.activation=foo(x)"], "foo"),
                      (["space.kind=loss"], "optimises validation accuracy alone"),
                      (["space.kind=loss", "search.objectives=[val_accuracy]", "search.strategy=aging"],
                       "search.strategy 'cma'"),
                      (["space.kind=activation", "search.objectives=[val_accuracy]", "space.activation=swish"],
                       "leave it 'default'")]:
        with pytest.raises(ConfigError, match=msg):
            load_config("params.yaml", sets)
    with pytest.raises(ComponentError, match="no such loss file"):
        resolve("loss", "missing/loss.json")


def test_a_component_file_of_the_wrong_kind_is_refused(tmp_path):
    f = tmp_path / "activation.json"
    f.write_text(json.dumps({"component": "activation", "value": {"tree": expr.parse("tanh(x)")}}))
    assert resolve("activation", str(f)) == {"tree": expr.parse("tanh(x)")}
    with pytest.raises(ComponentError, match="not a loss file"):
        resolve("loss", str(f))


def test_training_uses_the_recipes_loss_and_augmentation():
    from nas.training import train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)

    def fit(recipe):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
        return train(net, x, y, 2, 0.1, 16, np.random.default_rng(1), recipe=recipe), net

    plain, _ = fit(None)
    assert fit(Recipe())[0] == plain  # an empty recipe is plain cross-entropy, same draws
    taylor, _ = fit(Recipe(loss={"theta": cross_entropy_theta()}))
    noisy, _ = fit(Recipe(augment={"policy": [["noise", 10, 10]]}))
    assert taylor != plain and noisy != plain
    assert fit(Recipe(augment={"policy": [["noise", 10, 10]]}))[0] == noisy  # seeded
    # a schedule that only augments in its second half: the first epoch trains as plain does
    late, _ = fit(Recipe(augment={"phases": [[["noise", 0, 10]], [["noise", 10, 10]]]}))
    early, _ = fit(Recipe(augment={"phases": [[["noise", 10, 10]], [["noise", 0, 10]]]}))
    assert late != plain and early != plain and late != early


def test_a_found_activation_is_used_by_the_elastic_nb201_and_codeepneat_spaces():
    from nas.config import SpaceConfig
    from nas.spaces.codeepneat import CoDeepNEATSpace
    from nas.spaces.codeepneat_build import activation
    from nas.spaces.elastic import ElasticSpace
    from nas.spaces.elastic_build import Supernet, extract_subnet
    from nas.spaces.registry import from_config

    # elastic: the supernet and its extracted subnets, learnable scales included
    space = ElasticSpace(SpaceConfig(activation="param(1.0, x) * sigmoid(x)", depths=[1, 2], kernel_sizes=[3],
                                     expand_ratios=[2], stage_channels=[8, 8], stage_strides=[1, 2], stem_channels=8))
    torch.manual_seed(0)
    sup = Supernet(space, 1, 5).eval()
    with torch.no_grad():
        for m in sup.modules():
            if isinstance(m, expr.EvolvedActivation):
                m.scales[0].fill_(0.7)
    g = space.sample(np.random.default_rng(0))
    sub = extract_subnet(sup, g).eval()
    x = torch.randn(3, 1, 8, 8)
    assert sum(isinstance(m, expr.EvolvedActivation) for m in sub.modules()) >= 3
    torch.testing.assert_close(sub(x), sup(x, g))

    # NAS-Bench-201 cells: every ReLU becomes the activation
    net = from_config(SpaceConfig(kind="nb201", nb201_channels=4, nb201_cells=1, activation="tanh")).build(
        from_config(SpaceConfig(kind="nb201")).largest(), (1, 8, 8), 5)
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules())
    assert any(isinstance(m, torch.nn.Tanh) for m in net.modules())

    # CoDeepNEAT: one more activation choice, stored in the genome as its expression
    cdn = CoDeepNEATSpace(None, "x * sigmoid(x)")
    assert cdn.vocab.activations[-1] == "x * sigmoid(x)" and "relu" in cdn.vocab.activations
    assert isinstance(activation("x * sigmoid(x)"), expr.EvolvedActivation)
    with pytest.raises(ValueError, match="unknown activation 'wobble'"):
        activation("wobble")


@pytest.mark.parametrize("classes", [2, 10, 136])
def test_the_taylor_loss_scale_matches_cross_entropy_at_a_uniform_prediction(classes):
    logits = torch.zeros(3, classes, requires_grad=True)
    target = torch.tensor([0, 1, classes - 1])
    TaylorGLOLoss(cross_entropy_theta())(logits, target).backward()
    ce = torch.zeros(3, classes, requires_grad=True)
    torch.nn.functional.cross_entropy(ce, target).backward()
    rows = torch.arange(3)
    torch.testing.assert_close(logits.grad[rows, target], ce.grad[rows, target], rtol=1e-5, atol=1e-7)


def test_the_headline_says_when_the_search_found_nothing_better_than_the_baseline():
    from nas.meta.select import headline

    m = {"component": "loss", "found": "TaylorGLO [...]", "baseline": "cross_entropy",
         "test": {"seeds": 2, "found": {"mean": 0.2, "std": 0.1}, "baseline": {"mean": 0.6, "std": 0.01},
                  "p_value": 0.03}}
    assert "keep" not in headline({**m, "beats_baseline_on_validation": True})
    assert headline({**m, "beats_baseline_on_validation": False}).endswith(
        "it does not beat cross_entropy on validation: keep cross_entropy")

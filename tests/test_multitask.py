"""Multi-task architectures: shared-trunk heads and per-task routing over shared modules
(shapes, per-task outputs, real parameter sharing), their search and training."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from nas.config import CoDeepNEATConfig, SpaceConfig
from nas.spaces.codeepneat import CoDeepNEATSpace, chain_graph, to_dict
from nas.spaces.multitask import RoutingSpace, join_tasks, split_tasks
from nas.spaces.multitask_build import HeadsNet, RoutingNet, TaskView, build_multitask
from nas.training import accuracy_and_soft_by_task, accuracy_by_task, train_multitask

CLASSES = [5, 7, 3]


def chain(*nodes) -> nx.DiGraph:
    return chain_graph(list(nodes))


def conv(c=16, k=3, act="relu"):
    return {"op": "conv", "channels": c, "kernel": k, "act": act}


def slot(s):
    return {"op": "module", "species": s}


def routing_net(space=None):
    """Task 0 uses modules A then B, task 1 uses A only, task 2 uses B only (B pools with
    stride 1, keeping the shape every routing module must keep)."""
    space = space or RoutingSpace(None, 3, 16)
    bp = join_tasks([chain(slot(0), slot(1)), chain(slot(0)), chain(slot(1))])
    g = space.assemble(bp, {0: chain(conv()), 1: chain(conv(k=1, act="tanh"), {"op": "maxpool"}, {"op": "batchnorm"})})
    return space, g, RoutingNet(space, g, (1, 28, 28), CLASSES)


def test_routing_shares_module_parameters_between_tasks():
    space, g, net = routing_net()
    assert len(net.blocks) == 2  # two modules, however many tasks route through them
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == sum(p.numel() for p in net.stem.parameters()) + sum(
        p.numel() for p in net.blocks.parameters()) + sum(p.numel() for p in net.heads.parameters())
    x = torch.randn(4, 1, 28, 28)
    for t, k in enumerate(CLASSES):
        assert net(x, t).shape == (4, k)
    # task 1's loss trains module A (shared with task 0) and not module B (tasks 0 and 2 only)
    net.zero_grad()
    net(x, 1).sum().backward()
    grads = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in b.parameters()) for b in net.blocks]
    assert grads == [True, False]
    # changing module A changes what task 0 and task 1 compute, not task 2
    net.eval()
    before = [net(x, t).detach() for t in range(3)]
    with torch.no_grad():
        next(net.blocks[0].parameters()).add_(0.5)
    after = [net(x, t).detach() for t in range(3)]
    assert [not torch.allclose(a, b) for a, b in zip(before, after)] == [True, True, False]
    assert space.sharing(g)["tasks_per_module"] == [[0, 1], [0, 2]]


def test_heads_share_one_trunk_with_a_head_per_task():
    space = CoDeepNEATSpace()
    g = space.assemble(chain(slot(0)), {0: chain(conv(8), {"op": "maxpool"})})
    net = HeadsNet(space, g, (1, 28, 28), CLASSES)
    x = torch.randn(3, 1, 28, 28)
    assert [net(x, t).shape for t in range(3)] == [(3, k) for k in CLASSES]
    net.zero_grad()
    net(x, 2).sum().backward()
    assert all(p.grad is not None for p in net.trunk.parameters())
    assert all(p.grad is None for h in (net.heads[0], net.heads[1]) for p in h.parameters())
    assert all(p.grad is not None for p in net.heads[2].parameters())


@pytest.mark.parametrize("multitask", ["heads", "routing"])
def test_task_views_trace_export_and_autoinit(multitask, tmp_path):
    from nas.autoinit import init_model
    from nas.export import export_onnx, onnx_max_abs_diff

    cfg = SpaceConfig(kind="codeepneat", multitask=multitask, routing_channels=16)
    rng = np.random.default_rng(0)
    space = RoutingSpace(cfg.codeepneat, 3, 16) if multitask == "routing" else CoDeepNEATSpace(cfg.codeepneat)
    g = space.sample(rng, 4)
    net = build_multitask(cfg, g, (1, 28, 28), CLASSES)
    for t in range(3):
        rep = init_model(TaskView(net, t), "autoinit", (1, 28, 28), rng_seed=0)
        assert rep.traced and rep.applied
    view = TaskView(net, 1).eval()
    path = export_onnx(view, (1, 28, 28), tmp_path / "t1.onnx")
    assert onnx_max_abs_diff(view, path, np.random.default_rng(0).normal(size=(4, 1, 28, 28)).astype(np.float32)) < 1e-4


def test_routing_space_mutates_one_task_at_a_time_and_validates():
    space = RoutingSpace(None, 3, 16)
    rng = np.random.default_rng(1)
    bp = space.minimal_blueprint(rng, [0, 1])
    for _ in range(30):
        child = space.mutate_blueprint(bp, rng, {"add_layer": 1, "add_edge": 1, "change_layer": 1}, [0, 1])
        assert space.valid_blueprint(child)
        changed = [to_dict(a) != to_dict(b) for a, b in zip(split_tasks(bp), split_tasks(child))]
        assert sum(changed) <= 1
        bp = child
    # an edge between two tasks' graphs, or a module that changes the width, is refused
    bad = bp.copy()
    a = next(n for n, x in bad.nodes(data="attrs") if x.get("task") == 0 and x["op"] == "input")
    b = next(n for n, x in bad.nodes(data="attrs") if x.get("task") == 1 and x["op"] == "output")
    bad.add_edge(a, b)
    assert not space.valid_blueprint(bad)
    wide = space.assemble(join_tasks([chain(slot(0))] * 3), {0: chain(conv(64))})
    with pytest.raises(ValueError, match="not shape-preserving"):
        space.validate(wide)
    assert set(space.vocab.layers) == {"conv", "maxpool", "avgpool", "batchnorm", "dropout", "activation"}


def test_sep_crossover_of_routings_keeps_every_task_valid():
    space = RoutingSpace(None, 2, 16)
    a = join_tasks([chain(slot(0), slot(1)), chain(slot(0))])
    b = join_tasks([chain(slot(2)), chain(slot(1), slot(2), slot(0))])
    rng = np.random.default_rng(0)
    kids = [k for k in (space.crossover_blueprint(a, b, rng) for _ in range(8)) if k is not None]
    assert kids and all(space.valid_blueprint(k) for k in kids)
    assert any(to_dict(x) != to_dict(y) for k in kids for x, y in zip(split_tasks(k), split_tasks(a)))


def _two_digit_tasks():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = ((d.images / 16.0 - 0.3) / 0.4).astype(np.float32)[:, None]
    t = (d.target >= 5).astype(np.int64)
    y = (d.target - 5 * t).astype(np.int64)
    return x, y, t


def test_joint_training_learns_every_task():
    x, y, t = _two_digit_tasks()
    space = RoutingSpace(None, 2, 16)
    g = space.assemble(join_tasks([chain(slot(0)), chain(slot(0))]), {0: chain(conv(16))})
    torch.manual_seed(0)
    net = RoutingNet(space, g, (1, 8, 8), [5, 5])
    tr, va = np.arange(len(y)) % 4 != 0, np.arange(len(y)) % 4 == 0
    losses = train_multitask(net, x[tr], y[tr], t[tr], 2, 3, 0.05, 64, np.random.default_rng(0))
    acc = accuracy_by_task(net, x[va], y[va], t[va], 2)
    assert losses[-1] < losses[0] and min(acc) > 0.8
    # each task's soft accuracy is that task's mean probability of the true class, from its own head
    _, soft = accuracy_and_soft_by_task(net, x[va], y[va], t[va], 2)
    for k in range(2):
        rows = va & (t == k)
        with torch.no_grad():
            p = torch.softmax(net(torch.from_numpy(x[rows]), k).double(), 1)
        assert soft[k] == pytest.approx(float(p[torch.arange(int(rows.sum())), torch.from_numpy(y[rows])].mean()))


@pytest.mark.parametrize("multitask", ["heads", "routing"])
def test_mixed_batches_run_shared_layers_once_on_every_task(multitask):
    """forward_mixed equals per-task forwarding in eval mode; in training, a module shared by
    several tasks runs once on their rows together, so its batch norm sees the task mixture."""
    from nas.training import task_logits

    if multitask == "routing":
        # task 0: A then B, task 1: A, task 2: B; A and B both hold batch norm
        space = RoutingSpace(None, 3, 16)
        bp = join_tasks([chain(slot(0), slot(1)), chain(slot(0)), chain(slot(1))])
        g = space.assemble(bp, {0: chain(conv(), {"op": "batchnorm"}), 1: chain(conv(k=1), {"op": "batchnorm"})})
        net = RoutingNet(space, g, (1, 28, 28), CLASSES)
        shared = [b for b in net.blocks]
    else:
        space = CoDeepNEATSpace()
        g = space.assemble(chain(slot(0)), {0: chain(conv(8), {"op": "batchnorm"}, {"op": "maxpool"})})
        net = HeadsNet(space, g, (1, 28, 28), CLASSES)
        shared = [net.trunk]
    x, t = torch.randn(10, 1, 28, 28), torch.tensor([0, 2, 1, 0, 2, 2, 1, 0, 1, 2])
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append(len(i[0]))) for m in shared]
    net.train()
    out = task_logits(net, x, t)
    assert sorted(k for k, _, _ in out) == [0, 1, 2]
    # a shared module runs once per wave on all the rows ready for it: A on tasks 0 and 1
    # together (3 + 3 rows), B on task 2 (4), then B on task 0 once A has given its input (3)
    assert calls == ([3 + 3, 4, 3] if multitask == "routing" else [10])
    for h in hooks:
        h.remove()
    net.eval()
    for k, rows, logits in task_logits(net, x, t):
        assert logits.shape == (len(rows), CLASSES[k])
        assert torch.equal(rows, torch.nonzero(t == k).flatten())
        assert torch.allclose(logits, net(x[rows], k), atol=1e-5)


def test_coevolution_runs_on_routings():
    from nas.genome import EvaluationResult
    from nas.strategies.codeepneat import CoDeepNEATStrategy

    space = RoutingSpace(None, 3, 16)
    s = CoDeepNEATStrategy(space, ["val_accuracy"], {}, 0, CoDeepNEATConfig(module_population=8,
                                                                              blueprint_population=4), 8)
    seen = set()
    for _ in range(4):
        asked = s.ask(8)
        assert asked and not set(asked) & seen
        seen.update(asked)
        for g in asked:
            space.validate(g)
        # reward routes that share modules between tasks (a stand-in for transfer)
        s.tell([EvaluationResult(g, {"val_accuracy": float(np.mean(list(space.sharing(g)["module_overlap"].values())))})
                for g in asked])
    assert s.history and all(h["module_species"] >= 1 for h in s.history)


def test_omniglot_example_runs_under_dvc_with_per_task_outputs(tmp_path, runs_api):
    """The committed example (shrunk budgets) as DVC users run it (issue 17): `evonas config`
    turns it into the complete params.yaml, and `dvc repro` runs it through Prefect, Dask and
    real training on the packaged Omniglot alphabets, into the example's own output folders:
    per-task metrics, one exported model per task, a drawing of the per-task topologies."""
    import json

    import pandas as pd

    from tests.conftest import repo_copy, sh

    repo, env = repo_copy(tmp_path, [], runs_api)
    shrink = ["search.population=4", "search.generations=1", "evaluation.train_epochs=1", "selection.finetune_epochs=1",
              "selection.rules=[best_accuracy]", "evaluation.latency_repeats=2", "evaluation.latency_warmup=0"]
    sh(["evonas", "config", "--params", "examples/omniglot_multitask.yaml", *[a for s in shrink for a in ("--set", s)],
        "--out", "params.yaml", "--force"], repo, env)
    out = sh(["dvc", "repro"], repo, env)
    assert "Running stage 'select'" in out
    select, reports = repo / "artifacts/omniglot/select", repo / "reports/omniglot"  # the example's out_dirs
    tasks = ["Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"]
    metrics = json.loads((reports / "metrics.json").read_text())
    per_task = metrics["per_task_test_accuracy"]
    assert per_task and all(sorted(v) == tasks and all(0 <= a <= 1 for a in v.values()) for v in per_task.values())
    cid = next(iter(per_task))
    card = json.loads((select / "models" / f"{cid}.json").read_text())
    assert card["tasks"] == tasks and card["multitask"] == "routing" and card["sharing"]["modules_per_task"]
    assert card["test_accuracy"] == pytest.approx(np.mean(list(card["per_task_test_accuracy"].values())))
    for t in tasks:
        assert (select / "models" / card["files"][f"onnx:{t}"]).is_file()
    front = pd.read_csv(select / "pareto.csv")
    assert all(f"val_acc:{t}" in front.columns for t in tasks)
    rows = json.loads((select / "codeepneat_front.json").read_text())
    assert all(len(r["routes"]) == 5 for r in rows)
    assert "up to date" in sh(["dvc", "status"], repo, env).lower()
    assert "n_pareto" in sh(["dvc", "metrics", "show"], repo, env)  # the templated metrics path
    out_png = tmp_path / "routes.png"
    sh(["evonas", "show", "--draw", cid, "--out", str(out_png)], repo, env)
    assert out_png.stat().st_size > 5000


@pytest.mark.parametrize("scheme", ["heads", "routing"])
def test_evaluator_records_every_task_and_the_mean(scheme, tmp_path):
    from nas import stages
    from nas.evaluators.standalone import StandaloneEvaluator
    from nas.factory import build_space
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, ["data.kind=omniglot", "data.tasks=[Latin, Greek]", "space.kind=codeepneat",
                                 f"space.multitask={scheme}", "space.routing_channels=8"])
    stages.write_prepared(cfg, stages.prepare_data(cfg), 0.0)
    space = build_space(cfg)
    ev = StandaloneEvaluator(space=cfg.space, data_dir=cfg.data.out_dir, epochs=1, latency_repeats=2, latency_warmup=0,
                             init="autoinit")
    m = ev.metrics(space.sample(np.random.default_rng(0), 2), 0)
    assert set(m) >= {"val_accuracy", "val_acc:Latin", "val_acc:Greek", "params", "flops", "latency_ms"}
    assert m["val_accuracy"] == pytest.approx((m["val_acc:Latin"] + m["val_acc:Greek"]) / 2)
    assert 0 < m["val_soft_accuracy"] <= 1  # so a multi-task search can rank on it too

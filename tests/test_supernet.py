import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.config import Config
from nas.data import load_prepared
from nas.spaces.elastic import ElasticSpace
from nas.spaces.elastic_build import Supernet, build_subnet, extract_subnet
from nas.supernet import load_supernet
from nas.training import accuracy, recalibrate_bn


@pytest.mark.parametrize("widths", [[1.0], [0.5, 0.75, 1.0]], ids=["fixed_width", "elastic_width"])
def test_extracted_subnet_computes_exactly_what_the_supernet_computes(widths):
    torch.manual_seed(0)
    space = ElasticSpace(Config().space.model_copy(update={"width_multipliers": widths}))
    net = Supernet(space, 1, 10)
    # give BatchNorm non-trivial statistics
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    net.eval()
    x = torch.randn(5, 1, 8, 8)
    rng = np.random.default_rng(0)
    for g in [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(8)]:
        sub = extract_subnet(net, g).eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x, g), rtol=1e-5, atol=1e-5)
        assert sum(p.numel() for p in sub.parameters()) == \
            sum(p.numel() for p in build_subnet(space, g, 1, 10).parameters())


def test_trained_supernet_ranks_largest_over_untrained(trained):
    bundle = load_supernet(trained.supernet.out_dir)
    data = load_prepared(trained.data.out_dir)
    rng = np.random.default_rng(0)
    sub = extract_subnet(bundle.net, bundle.space.largest())
    recalibrate_bn(sub, data.x_train, 4, 128, rng)
    trained_acc = accuracy(sub, data.x_val, data.y_val)
    fresh = build_subnet(bundle.space, bundle.space.largest(), 1, 10)
    recalibrate_bn(fresh, data.x_train, 4, 128, rng)
    fresh_acc = accuracy(fresh, data.x_val, data.y_val)
    assert trained_acc > 0.6 and trained_acc > fresh_acc + 0.3
    log = json.loads((Path(trained.supernet.out_dir) / "train_log.json").read_text())
    assert log[-1]["loss"] < log[0]["loss"]


def test_device_resolution():
    import pytest

    from nas.training import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_cuda_is_made_deterministic(monkeypatch):
    """On CUDA torch is switched to its repeatable algorithms before the first CUDA operation (the
    flags need no GPU to set, so this runs everywhere; on a GPU machine resolve_device sets them)."""
    from nas.training import CUBLAS_WORKSPACE, deterministic_cuda, resolve_device

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.backends.cudnn.benchmark = True
    try:
        resolve_device("cpu")  # CPU work is repeatable as it is: nothing changes
        assert not torch.backends.cudnn.deterministic or before[2]
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        if torch.cuda.is_available():
            resolve_device("auto")
        else:
            deterministic_cuda()
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


def test_inherited_fine_tuning_adapts_a_copy_and_is_seeded(trained):
    from nas.evaluators.inherited import InheritedEvaluator
    from nas.factory import build_evaluator

    bundle = load_supernet(trained.supernet.out_dir)
    g = bundle.space.smallest()
    before = {k: v.clone() for k, v in bundle.net.state_dict().items()}
    plain = InheritedEvaluator(trained.supernet.out_dir, trained.data.out_dir, bn_batches=4)
    tuned = InheritedEvaluator(trained.supernet.out_dir, trained.data.out_dir, bn_batches=4, finetune_epochs=1,
                               finetune_lr=0.05)
    a, b = plain.metrics(g, 3), tuned.metrics(g, 3)
    assert a["params"] == b["params"] and a["latency_ms"] == b["latency_ms"], "costs are the architecture's"
    assert a["val_accuracy"] != b["val_accuracy"], "one epoch of fine-tuning changes the score"
    assert tuned.metrics(g, 3) == b, "seeded: the same candidate seed scores the same"
    assert 0 < a["val_soft_accuracy"] < 1 and 0 < b["val_soft_accuracy"] < 1  # reported beside the accuracy
    from nas.evaluators.inherited import cached_resources

    after = cached_resources(trained.supernet.out_dir, trained.data.out_dir)[0].net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the cached supernet is never trained"
    cfg = trained.model_copy(deep=True)
    cfg.evaluation.inherited_finetune_epochs = 2
    cfg.evaluation.inherited_finetune_lr = 0.02
    ev = build_evaluator(cfg)
    assert (ev.finetune_epochs, ev.finetune_lr, ev.finetune_batch_size) == (2, 0.02, cfg.evaluation.train_batch_size)


def test_soft_accuracy_is_the_mean_probability_of_the_true_class():
    from nas.training import accuracy_and_soft

    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [3.0, 0.0, 0.0]])
    y = np.array([0, 1, 2, 1])
    p = torch.softmax(logits.double(), 1)[torch.arange(4), torch.as_tensor(y)]

    class Fixed(torch.nn.Module):  # row i of the input picks row i of the logits
        def forward(self, x):
            return logits[x.long().reshape(-1)]

    acc, soft = accuracy_and_soft(Fixed(), np.arange(4, dtype=np.float32).reshape(4, 1), y, batch_size=3)
    assert acc == 0.5 and soft == pytest.approx(float(p.mean()))  # argmax hits: rows 0 and 1
    assert accuracy(Fixed(), np.arange(4, dtype=np.float32).reshape(4, 1), y) == acc


def test_progressive_shrinking_releases_kernel_then_depth_then_expand():
    import pytest

    from nas.supernet import elastic_dimensions, step_subnets

    space = ElasticSpace(Config().space.model_copy(update={"width_multipliers": [0.5, 0.75, 1.0]}))
    assert elastic_dimensions([], 0) == ElasticSpace.DIMENSIONS
    assert [elastic_dimensions([2, 4, 6], e) for e in (0, 2, 5, 6)] == [
        (), ("kernel",), ("kernel", "depth"), ("kernel", "depth", "expand", "width")]  # width joins with expand
    assert [elastic_dimensions([2, 4, 6, 8], e) for e in (6, 8)] == [
        ("kernel", "depth", "expand"), ("kernel", "depth", "expand", "width")]
    # with every dimension elastic, the sampler draws exactly as before (default training unchanged)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert [space.sample(a) for _ in range(20)] == [space.sample_elastic(b, ElasticSpace.DIMENSIONS) for _ in range(20)]
    assert step_subnets(space, (), np.random.default_rng(0), 2) == [space.largest()]
    largest = space.decode(space.largest())
    for elastic in [("kernel",), ("kernel", "depth")]:
        subnets = step_subnets(space, elastic, np.random.default_rng(1), 30)
        assert subnets[0] == space.largest()
        for g in subnets:
            blocks = space.decode(g)
            if "depth" not in elastic:  # every block present, each at the largest expand ratio
                assert [(b.stage, b.index) for b in blocks] == [(b.stage, b.index) for b in largest]
            assert {b.expand_ratio for b in blocks} == {max(space.cfg.expand_ratios)}
            assert space.channels(g) == space.max_channels
        assert {b.kernel_size for g in subnets for b in space.decode(g)} == set(space.cfg.kernel_sizes)
    i = np.arange(space.n_var)
    frozen = ((i >= space.n_stages) & (i < space.n_stages + 2 * space.n_stages * space.max_depth)
              & ((i - space.n_stages) % 2 == 1)) | (i >= space.n_stages + 2 * space.n_stages * space.max_depth)
    assert space.smallest_elastic(("kernel", "depth")) == space.canonical(np.where(frozen, space.upper_bounds, 0))
    assert space.smallest_elastic(ElasticSpace.DIMENSIONS) == space.smallest()
    with pytest.raises(ValueError, match="unknown elastic dimension"):
        space.sample_elastic(np.random.default_rng(0), ("breadth",))
    with pytest.raises(ValueError, match="progressive_epochs must be"):
        Config.model_validate({"supernet": {"epochs": 10, "progressive_epochs": [2, 1, 5]}})
    with pytest.raises(ValueError, match="progressive_epochs must be"):
        Config.model_validate({"supernet": {"epochs": 10, "progressive_epochs": [2, 5, 10]}})
    # the schedule as fractions of the epochs: it scales with supernet.epochs, never past the last epoch
    frac = [0.15, 0.3, 0.5, 0.7]
    assert Config.model_validate({"supernet": {"epochs": 22, "progressive": frac}}).supernet.progressive_schedule() == [
        3, 7, 11, 15]
    assert Config.model_validate({"supernet": {"epochs": 40, "progressive": frac}}).supernet.progressive_schedule() == [
        6, 12, 20, 28]
    assert Config.model_validate({"supernet": {"epochs": 1, "progressive": frac}}).supernet.progressive_schedule() == [
        0, 0, 0, 0]  # never past the last epoch: every dimension elastic in it
    assert Config.model_validate({"supernet": {"epochs": 10, "progressive_epochs": [2, 4, 6]}}
                                 ).supernet.progressive_schedule() == [2, 4, 6]
    assert Config().supernet.progressive_schedule() == []
    for bad in ([0.5, 0.3, 0.7], [0.1, 0.2, 1.0], [0.1, 0.2], [-0.1, 0.2, 0.3]):
        with pytest.raises(ValueError, match="supernet.progressive must be"):
            Config.model_validate({"supernet": {"progressive": bad}})
    with pytest.raises(ValueError, match="both set"):
        Config.model_validate({"supernet": {"epochs": 10, "progressive": frac, "progressive_epochs": [2, 4, 6]}})


def test_supernet_options_train_and_its_own_seed_sets_the_weights(trained):
    from nas.supernet import train_supernet

    import dataclasses

    full = load_prepared(trained.data.out_dir)
    # a quarter of the training images: the options need to run, not to learn digits
    data = dataclasses.replace(full, x_train=full.x_train[:256], y_train=full.y_train[:256],
                               t_train=None if full.t_train is None else full.t_train[:256])
    sets = {"epochs": 2, "progressive_epochs": [1, 1, 1], "distill_label_weight": 0.5, "seed": 5}
    cfg = trained.model_copy(update={"supernet": trained.supernet.model_copy(update=sets)})
    net, log = train_supernet(cfg, data)
    assert [e["elastic"] for e in log] == [[], ["kernel", "depth", "expand", "width"]]
    assert all(np.isfinite(e["loss"]) for e in log)
    other, _ = train_supernet(cfg.model_copy(update={"supernet": cfg.supernet.model_copy(update={"seed": 6})}), data)
    first = next(iter(net.state_dict()))
    assert not torch.equal(net.state_dict()[first], other.state_dict()[first])
    # the run's seed (0) is untouched by the supernet's own: the data split and every other stage keep it
    assert cfg.seed == 0 and json.loads((Path(trained.supernet.out_dir) / "meta.json").read_text())["supernet_seed"] == 0


def test_training_threads_follow_evonas_torch_threads(monkeypatch):
    """Training outside the Dask workers takes every core unless EVONAS_TORCH_THREADS says
    otherwise (runs side by side on one machine); the previous count comes back afterwards."""
    import os

    import torch

    from nas.env import default_threads
    from nas.training import torch_threads

    monkeypatch.delenv("EVONAS_TORCH_THREADS", raising=False)
    assert default_threads() == (os.cpu_count() or 1)
    before = torch.get_num_threads()
    monkeypatch.setenv("EVONAS_TORCH_THREADS", "3")
    with torch_threads():
        assert torch.get_num_threads() == 3
    with torch_threads(2):  # an explicit count wins
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv("EVONAS_TORCH_THREADS", bad)
        with pytest.raises(ValueError, match="EVONAS_TORCH_THREADS"):
            default_threads()

"""Weight-sharing supernet: sandwich-rule training, saving and loading.

Every step trains the largest subnet, the smallest and ``random_subnets`` random ones on
the same batch, accumulating their gradients (the sandwich rule of BigNAS / OFA), so one
set of weights ranks every subnet of the space. With ``supernet.distill`` (in-place
distillation, BigNAS / OFA) the largest subnet learns the labels and every other subnet
learns the largest one's predictions on the same batch (``supernet.distill_label_weight`` mixes
the labels back in). ``supernet.progressive`` (fractions of the epochs) or
``supernet.progressive_epochs`` trains with Once-for-All's progressive shrinking: the largest
subnet alone first, then kernel size, depth, expand ratio and width become elastic one after
another. Trained once, then reused by the surrogate, search and selection
stages.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from nas.config import Config, SpaceConfig
from nas.data import Prepared
from nas.io import atomic_write_json, atomic_write_with
from nas.spaces.elastic import ElasticSpace
from nas.costs import TABLE_FILE, CostTable
from nas.genome import Genome
from nas.spaces.elastic_build import Supernet, extract_subnet, subnet_layers
from nas.training import accuracy, batches, recalibrate_bn, resolve_device


@dataclass
class SupernetBundle:
    net: Supernet
    space: ElasticSpace
    meta: dict
    table: CostTable

    def costs(self, genome: Genome) -> dict[str, float]:
        """Exact ``params`` and ``flops`` and table ``latency_ms`` of a subnet, without building it."""
        return subnet_costs(self.table, self.space, genome, tuple(self.meta["input_shape"]), self.meta["num_classes"])


def subnet_costs(table: CostTable, space: ElasticSpace, genome: Genome, input_shape: tuple[int, int, int],
                 num_classes: int) -> dict[str, float]:
    return table.costs([layer.key for layer in subnet_layers(space, genome, input_shape, num_classes)])


def elastic_dimensions(progressive_epochs: list[int], epoch: int) -> tuple[str, ...]:
    """The dimensions sampled in ``epoch``: all of them without progressive shrinking; with it,
    Once-for-All's order (kernel, then depth, then expand ratio, then width), each from its epoch
    on; given three epochs, width joins with expand."""
    if not progressive_epochs:
        return ElasticSpace.DIMENSIONS
    starts = list(progressive_epochs) + list(progressive_epochs[-1:]) * (4 - len(progressive_epochs))
    return tuple(d for d, start in zip(ElasticSpace.DIMENSIONS, starts) if epoch >= start)


def step_subnets(space: ElasticSpace, elastic: tuple[str, ...], rng: np.random.Generator,
                 random_subnets: int) -> list[Genome]:
    """The subnets of one training step (sandwich rule): the largest first (it learns the labels
    and teaches the others), the smallest of the current sub-space, ``random_subnets`` uniform
    ones from it. Before any dimension is elastic only the largest trains."""
    largest = space.largest()
    if not elastic:
        return [largest]
    return ([largest, space.smallest_elastic(elastic)]
            + [space.sample_elastic(rng, elastic) for _ in range(random_subnets)])


def train_supernet(cfg: Config, data: Prepared,
                   on_epoch: Callable[[int, dict], None] | None = None) -> tuple[Supernet, list[dict]]:
    seed = cfg.seed if cfg.supernet.seed is None else cfg.supernet.seed
    torch.manual_seed(seed)  # torch's init draws from its generator; seed it for repeatability
    rng = np.random.default_rng(seed)
    device = resolve_device(cfg.evaluation.device)
    space = ElasticSpace(cfg.space)
    net = Supernet(space, data.input_shape[0], data.num_classes).to(device)
    sc = cfg.supernet
    opt = torch.optim.SGD(net.parameters(), lr=sc.lr, momentum=0.9, nesterov=True, weight_decay=sc.weight_decay)
    steps = sc.epochs * math.ceil(len(data.y_train) / sc.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    largest, smallest = space.largest(), space.smallest()
    from nas.meta.components import recipe
    from nas.training import _loss_and_augment

    loss_fn, augment = _loss_and_augment(recipe(cfg), rng)  # evaluation.loss / evaluation.augmentation
    log: list[dict] = []
    schedule = sc.progressive_schedule()
    for ep in range(sc.epochs):
        t0 = time.perf_counter()
        elastic = elastic_dimensions(schedule, ep)
        net.train()
        total, n = 0.0, 0
        for xb, yb in batches(data.x_train, data.y_train, sc.batch_size, rng, device):
            if augment is not None:
                xb = augment(xb, ep / sc.epochs)
            opt.zero_grad(set_to_none=True)
            genomes = step_subnets(space, elastic, rng, sc.random_subnets)
            teacher = None
            for g in genomes:
                logits = net(xb, g)
                if teacher is None:  # the largest subnet learns the labels
                    loss = loss_fn(logits, yb)
                    if sc.distill:
                        teacher = logits.detach().softmax(1)
                else:  # in-place distillation: soft cross-entropy against the largest subnet's predictions
                    loss = -(teacher * logits.log_softmax(1)).sum(1).mean()
                    if sc.distill_label_weight:
                        loss = (1 - sc.distill_label_weight) * loss + sc.distill_label_weight * loss_fn(logits, yb)
                if not torch.isfinite(loss):
                    raise RuntimeError(f"supernet training diverged in epoch {ep} (loss {loss.item()}); "
                                       "lower supernet.lr")
                loss.backward()
                total += float(loss.detach()) * len(yb) / len(genomes)
            opt.step()
            sched.step()
            n += len(yb)
        entry = {"epoch": ep, "loss": total / n, "seconds": time.perf_counter() - t0, "elastic": list(elastic)}
        if ep == sc.epochs - 1 or (ep + 1) % max(1, sc.epochs // 4) == 0:
            for tag, g in (("largest", largest), ("smallest", smallest)):
                sub = extract_subnet(net, g).to(device)
                recalibrate_bn(sub, data.x_train, cfg.evaluation.bn_batches, cfg.evaluation.batch_size,
                               np.random.default_rng(cfg.seed), device)
                entry[f"val_acc_{tag}"] = accuracy(sub, data.x_val, data.y_val, device=device)
        log.append(entry)
        if on_epoch:
            on_epoch(ep, entry)
    return net.cpu(), log


def save_supernet(net: Supernet, cfg: Config, data: Prepared, log: list[dict], out_dir: str | Path) -> None:
    out = Path(out_dir)
    atomic_write_with(out / "supernet.pt", lambda tmp: torch.save(net.state_dict(), tmp))
    atomic_write_json(out / "meta.json", {
        "space": cfg.space.model_dump(), "in_channels": data.input_shape[0], "num_classes": data.num_classes,
        "input_shape": list(data.input_shape), "dataset_hash": data.dataset_hash, "seed": cfg.seed,
        "supernet_seed": cfg.seed if cfg.supernet.seed is None else cfg.supernet.seed})
    atomic_write_json(out / "train_log.json", log)


def load_supernet(out_dir: str | Path) -> SupernetBundle:
    out = Path(out_dir)
    if not (out / "supernet.pt").is_file() or not (out / "meta.json").is_file():
        raise FileNotFoundError(f"{out}: no trained supernet (run `evonas stage pretrain` first)")
    meta = json.loads((out / "meta.json").read_text())
    space = ElasticSpace(SpaceConfig.model_validate(meta["space"]))
    net = Supernet(space, meta["in_channels"], meta["num_classes"])
    net.load_state_dict(torch.load(out / "supernet.pt", map_location="cpu", weights_only=True))
    net.eval()
    return SupernetBundle(net, space, meta, CostTable.load(out / TABLE_FILE))

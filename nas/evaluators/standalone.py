"""Stand-alone evaluation: build the candidate from scratch, train it, score it on validation.

Works for every space with a torch builder (the elastic CNN and NAS-Bench-201 cells), with
no supernet. Training is seeded by the candidate's own seed, so a result does not depend on
which worker ran it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nas.config import SpaceConfig
from nas.data import load_prepared
from nas.genome import Genome
from nas.objectives import cost_metrics
from nas.training import accuracy_and_soft, resolve_device, train


def build_model(space_cfg: SpaceConfig, genome: Genome, in_channels: int, num_classes: int,
                input_shape: tuple[int, ...] | None = None, init: str = "default", seed: int = 0,
                task_classes: list[int] | None = None) -> torch.nn.Module:
    """A freshly initialised network for ``genome`` in the configured space. ``input_shape``
    (channels, height, width) is needed by spaces whose layers depend on it (CoDeepNEAT);
    ``init`` is ``evaluation.init`` (``autoinit`` re-initialises the weights analytically).
    With ``task_classes`` (classes per task of multi-task data) the network is multi-task:
    ``net(x, task)``."""
    shape = tuple(input_shape) if input_shape is not None else (in_channels, 8, 8)
    if task_classes is not None:
        from nas.spaces.multitask_build import TaskView, build_multitask

        net = build_multitask(space_cfg, genome, shape, list(task_classes))
        if init != "default":
            from nas.autoinit import init_model

            for t in range(len(task_classes)):  # shared layers get the same draw each time; each head its own
                init_model(TaskView(net, t), init, shape, rng_seed=seed)
        return net
    from nas.spaces.registry import from_config

    net = from_config(space_cfg).build(genome, shape, num_classes)  # each space builds its own models
    if init != "default":
        from nas.autoinit import init_model

        init_model(net, init, shape, rng_seed=seed)
    return net


@dataclass(frozen=True)
class StandaloneEvaluator:
    space: SpaceConfig
    data_dir: str
    base_seed: int = 0
    epochs: int = 5
    lr: float = 0.05
    batch_size: int = 64
    latency_repeats: int = 30
    latency_warmup: int = 5
    device: str = "auto"
    threads: int = 1
    init: str = "default"
    recipe_json: str = ""  # evaluation.loss and evaluation.augmentation (nas.meta.components.recipe_json)

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        """Torch's thread count and global generator are set for this candidate and restored
        afterwards, so nothing of one candidate carries over to the next on the same worker."""
        from nas.training import torch_threads

        with torch_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._metrics(genome, seed)

    def _metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        data = load_prepared(self.data_dir)
        device = resolve_device(self.device)
        if data.is_multitask or self.space.multitask != "none":
            return self._multitask_metrics(genome, seed, data, device)
        net = build_model(self.space, genome, data.input_shape[0], data.num_classes, data.input_shape, self.init, seed)
        from nas.meta.components import recipe_from_json

        train(net, data.x_train, data.y_train, self.epochs, self.lr, self.batch_size, np.random.default_rng(seed),
              device, recipe=recipe_from_json(self.recipe_json))
        val, soft = accuracy_and_soft(net, data.x_val, data.y_val, device=device)
        net = net.cpu()
        return {"val_accuracy": float(val), "val_soft_accuracy": float(soft),
                **cost_metrics(net, data.input_shape, self.latency_repeats, self.latency_warmup)}

    def _multitask_metrics(self, genome: Genome, seed: int, data, device) -> dict[str, float]:
        """Joint training on every task; ``val_accuracy`` and ``val_soft_accuracy`` are the means
        over tasks, each task's own accuracy is ``val_acc:<task>``; costs are the whole network's parameters and the
        mean FLOPs and latency of one task's forward pass."""
        from nas.training import accuracy_and_soft_by_task, train_multitask

        net = build_model(self.space, genome, data.input_shape[0], data.num_classes, data.input_shape, self.init, seed,
                          task_classes=data.task_num_classes)
        from nas.meta.components import recipe_from_json

        train_multitask(net, data.x_train, data.y_train, data.t_train, data.n_tasks, self.epochs, self.lr,
                        self.batch_size, np.random.default_rng(seed), device, recipe=recipe_from_json(self.recipe_json))
        accs, softs = accuracy_and_soft_by_task(net, data.x_val, data.y_val, data.t_val, data.n_tasks, device=device)
        return {"val_accuracy": float(np.mean(accs)), "val_soft_accuracy": float(np.mean(softs)),
                **{f"val_acc:{name}": float(a) for name, a in zip(data.tasks, accs)},
                **multitask_costs(net.cpu(), data.input_shape, data.n_tasks, self.latency_repeats, self.latency_warmup)}


def multitask_costs(net: torch.nn.Module, input_shape, n_tasks: int, repeats: int, warmup: int) -> dict[str, float]:
    from nas.objectives import count_params
    from nas.spaces.multitask_build import TaskView

    per = [cost_metrics(TaskView(net, t), input_shape, repeats, warmup) for t in range(n_tasks)]
    return {"params": float(count_params(net)), "flops": float(np.mean([p["flops"] for p in per])),
            "latency_ms": float(np.mean([p["latency_ms"] for p in per]))}

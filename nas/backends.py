"""One backend per evaluation kind: what a kind of evaluation needs, in one object.

``evaluation.kind`` used to be an ``if`` chain in the stages, the checkpoint fingerprint, the
pre-flight checks and the factory. Each kind is now a :class:`Backend` that owns:

- ``stages``: the pipeline stages it runs (the others record a skip under DVC);
- ``evaluator(cfg)``: the evaluator the search's candidates go through;
- ``search_setup(cfg, evaluator)``: the search space the strategy explores, prior results it
  starts from, the hypervolume normalisation box and the costs known without evaluation;
- ``fingerprint_inputs(cfg)``: what a search checkpoint must share with the run resuming it,
  beyond the search params (the data, the supernet, the table);
- ``preflight(cfg, first)``: the files it needs before stage ``first`` runs;
- ``finalize(cfg, row, rules)``: how a selected model becomes a tested, exported model;
- ``shares_process``: whether candidates may run side by side in one worker process
  (``evaluation.threads_per_worker`` > 1); ``check_pool(cfg)`` rejects it where they may not.

A new kind is one new class here and one entry in :data:`BACKENDS`; ``tests/test_backends.py``
runs one contract suite over every registered backend. Heavy imports stay inside the methods,
so importing this module costs nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from nas.config import Config


STAGES: tuple[str, ...] = ("prepare", "pretrain", "surrogate", "search", "select")
"""The pipeline's stages, in order (each backend runs an ordered part of them)."""


class MissingInput(Exception):
    """A file a stage needs is not there (the pre-flight check turns it into a clear error)."""


@dataclass
class SearchSetup:
    """What the search stage needs from a backend besides its evaluator."""

    space: Any
    prior: list = field(default_factory=list)  # (genome, metrics) results the strategy may start from
    ideal: "np.ndarray | None" = None  # hypervolume box, minimisation form, one entry per objective
    nadir: "np.ndarray | None" = None
    exact_costs: Callable | None = None  # genome -> costs known without evaluating it


def _file_hash(path: Path) -> str | None:
    """sha256 (first 16 hex digits) of a file the search reads: a retrained supernet or an
    edited table makes an old checkpoint stale."""
    import hashlib

    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _json_field(path: Path, key: str) -> Any:
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _need(path: Path, what: str, how: str) -> None:
    if not path.is_file():
        raise MissingInput(f"{path}: {what} is missing (run `{how}` first, or the whole pipeline with `evonas run`)")


class Backend:
    """The contract (see the module docstring). Subclasses set ``kind`` and ``stages``."""

    kind: str = ""
    stages: tuple[str, ...] = ()
    #: whether two candidates may be evaluated at once in one worker process. False where an
    #: evaluation draws from torch's process-wide generator (initial weights, dropout): a
    #: neighbour's draws would make its result depend on timing, and replay would not reproduce it.
    shares_process: bool = False
    #: modules every worker of this kind imports (its evaluator's): a LocalCluster's workers are
    #: forked from a process that imported them once (:func:`nas.evaluators.dask.fork_server_workers`)
    worker_modules: tuple[str, ...] = ()

    def check_pool(self, cfg: "Config") -> None:
        """Raise :class:`~nas.config.ConfigError` when ``evaluation.threads_per_worker`` asks for
        concurrent candidates in one process and this kind cannot share one."""
        n = cfg.evaluation.threads_per_worker
        if n > 1 and not self.shares_process:
            from nas.config import ConfigError

            raise ConfigError(
                f"evaluation.threads_per_worker is {n}, but '{self.kind}' evaluations cannot share a worker process: "
                "each draws initial weights (and dropout masks) from torch's process-wide generator, so candidates "
                "running side by side would change each other's results. Keep threads_per_worker: 1 and set "
                f"evaluation.workers to the number of candidates to evaluate at once (e.g. {cfg.evaluation.workers * n})")

    def evaluator(self, cfg: "Config"):
        raise NotImplementedError

    def search_setup(self, cfg: "Config", evaluator) -> SearchSetup:
        raise NotImplementedError

    def fingerprint_inputs(self, cfg: "Config") -> dict[str, Any]:
        raise NotImplementedError

    def preflight(self, cfg: "Config", first: str | None) -> None:
        """Raise :class:`MissingInput` when stage ``first`` cannot start."""

    def finalize(self, cfg: "Config", row: dict, rules: list[str]) -> dict:
        """Fine-tune (or look up), test and export one selected model; returns its card."""
        from nas.stages import train_and_export

        return train_and_export(cfg, row, rules)

    def selected_network(self, cfg: "Config", data, genome, seed: int, rng, device):
        """The trained torch network of a selected single-task model (``finalize`` tests and
        exports it)."""
        raise NotImplementedError(f"evaluation.kind {self.kind!r} builds no networks")

    #: whether this kind runs the whole select stage itself (:meth:`select`) instead of the
    #: shared one (front by validation accuracy, fine-tuning, export)
    own_select: bool = False

    def select(self, cfg: "Config") -> dict:
        """The select stage of a kind with ``own_select``: returns the run's metrics."""
        raise NotImplementedError(f"evaluation.kind {self.kind!r} uses the shared select stage")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, stages={self.stages})"


class _DataBackend(Backend):
    """Backends that read the prepared data."""

    def fingerprint_inputs(self, cfg: "Config") -> dict[str, Any]:
        from nas.meta.components import file_hashes

        return {"data": {k: v for k, v in cfg.data.model_dump().items() if k != "out_dir"},
                "dataset_hash": _json_field(Path(cfg.data.out_dir) / "meta.json", "dataset_hash"),
                **({"component_files": h} if (h := file_hashes(cfg)) else {})}


class InheritedBackend(_DataBackend):
    """Candidates scored with weights inherited from a trained supernet (MSuNAS, Once-for-All)."""

    kind = "inherited"
    stages = ("prepare", "pretrain", "surrogate", "search", "select")
    worker_modules = ("nas.evaluators.inherited",)

    def evaluator(self, cfg: "Config"):
        from nas.evaluators.inherited import InheritedEvaluator

        e = cfg.evaluation
        return InheritedEvaluator(supernet_dir=cfg.supernet.out_dir, data_dir=cfg.data.out_dir, base_seed=cfg.seed,
                                  bn_batches=e.bn_batches, batch_size=e.batch_size, device=e.device,
                                  threads=e.threads_per_worker, finetune_epochs=e.inherited_finetune_epochs,
                                  finetune_lr=e.inherited_finetune_lr, finetune_batch_size=e.train_batch_size)

    def search_setup(self, cfg: "Config", evaluator) -> SearchSetup:
        from nas.stages import _check_space, load_prior, objective_bounds
        from nas.supernet import load_supernet

        bundle = load_supernet(cfg.supernet.out_dir)
        _check_space(cfg, bundle)
        prior = load_prior(cfg)
        ideal, nadir = objective_bounds(cfg.search.objectives, prior)
        return SearchSetup(bundle.space, prior, ideal, nadir, bundle.costs)

    def fingerprint_inputs(self, cfg: "Config") -> dict[str, Any]:
        return {**super().fingerprint_inputs(cfg),
                "supernet": {k: v for k, v in cfg.supernet.model_dump().items() if k != "out_dir"},
                "surrogate": {k: v for k, v in cfg.surrogate.model_dump().items() if k != "out_dir"},
                "supernet_weights_sha256": _file_hash(Path(cfg.supernet.out_dir) / "supernet.pt"),
                "surrogate_samples_sha256": _file_hash(Path(cfg.surrogate.out_dir) / "samples.json")}

    def selected_network(self, cfg: "Config", data, genome, seed: int, rng, device):
        """Extracted from the supernet and fine-tuned (or only BatchNorm-recalibrated when
        ``selection.finetune_epochs`` is 0)."""
        from nas.spaces.elastic_build import extract_subnet
        from nas.supernet import load_supernet
        from nas.meta.components import recipe
        from nas.training import recalibrate_bn, train

        sel, ev = cfg.selection, cfg.evaluation
        net = extract_subnet(load_supernet(cfg.supernet.out_dir).net, genome).to(device)
        if sel.finetune_epochs > 0:
            train(net, data.x_train, data.y_train, sel.finetune_epochs, sel.finetune_lr, sel.batch_size, rng, device,
                  recipe=recipe(cfg))
        else:
            recalibrate_bn(net, data.x_train, ev.bn_batches, ev.batch_size, rng, device)
        return net

    def preflight(self, cfg: "Config", first: str | None) -> None:
        if first in ("surrogate", "search"):
            _need(Path(cfg.supernet.out_dir) / "supernet.pt", "a trained supernet", "evonas stage pretrain")
        if first == "search":
            _need(Path(cfg.surrogate.out_dir) / "samples.json", "the surrogate stage's samples",
                  "evonas stage surrogate")


class TrainBackend(_DataBackend):
    """Every candidate trained from scratch (CoDeepNEAT, multi-task, NB201 cells on user data)."""

    kind = "train"
    stages = ("prepare", "search", "select")
    worker_modules = ("nas.evaluators.standalone",)

    def evaluator(self, cfg: "Config"):
        from nas.evaluators.standalone import StandaloneEvaluator
        from nas.meta.components import inline_activation, recipe_json

        e = cfg.evaluation
        return StandaloneEvaluator(space=inline_activation(cfg.space), data_dir=cfg.data.out_dir, base_seed=cfg.seed,
                                   epochs=e.train_epochs, lr=e.train_lr, batch_size=e.train_batch_size,
                                   latency_repeats=e.latency_repeats, latency_warmup=e.latency_warmup,
                                   device=e.device, threads=e.threads_per_worker, init=e.init,
                                   recipe_json=recipe_json(cfg))

    def search_setup(self, cfg: "Config", evaluator) -> SearchSetup:
        from nas.factory import build_space
        from nas.stages import builder_bounds

        space = build_space(cfg)
        ideal, nadir = builder_bounds(cfg, space)
        return SearchSetup(space, [], ideal, nadir)

    def selected_network(self, cfg: "Config", data, genome, seed: int, rng, device):
        """No shared weights: trained from scratch for the search budget plus fine-tuning."""
        from nas.evaluators.standalone import build_model
        from nas.meta.components import recipe
        from nas.training import train

        sel, ev = cfg.selection, cfg.evaluation
        net = build_model(cfg.space, genome, data.input_shape[0], data.num_classes, data.input_shape, ev.init,
                          seed).to(device)
        train(net, data.x_train, data.y_train, ev.train_epochs + sel.finetune_epochs, ev.train_lr,
              ev.train_batch_size, rng, device, recipe=recipe(cfg))
        return net

    def preflight(self, cfg: "Config", first: str | None) -> None:
        if first == "search":
            _need(Path(cfg.data.out_dir) / "data.npz", "prepared data", "evonas stage prepare")


class TableBackend(Backend):
    """Candidates looked up in a benchmark table (NAS-Bench-201 and tables of its shape)."""

    kind = "table"
    stages = ("search", "select")
    worker_modules = ("nas.evaluators.table",)
    shares_process = True  # a lookup draws nothing

    def evaluator(self, cfg: "Config"):
        from nas.evaluators.table import TableEvaluator

        t = cfg.evaluation.table
        return TableEvaluator(path=t.path, signal_column=t.signal_column, report_column=t.report_column,
                              cost_columns=tuple(t.cost_columns), arch_column=t.arch_column, base_seed=cfg.seed,
                              sim_seconds=t.sim_seconds, sim_seconds_column=t.sim_seconds_column,
                              sim_scale=t.sim_scale, builder_channels=cfg.space.nb201_channels,
                              builder_cells=cfg.space.nb201_cells)

    def search_setup(self, cfg: "Config", evaluator) -> SearchSetup:
        from nas.factory import build_space
        from nas.stages import table_bounds

        ideal, nadir = table_bounds(cfg, evaluator)
        return SearchSetup(build_space(cfg), [], ideal, nadir)

    def fingerprint_inputs(self, cfg: "Config") -> dict[str, Any]:
        path = cfg.evaluation.table.path
        return {"table_sha256": _file_hash(Path(path))} if path else {}

    def preflight(self, cfg: "Config", first: str | None) -> None:
        if first in ("search", "select"):
            from nas.preflight import _check_table

            _check_table(cfg)

    def finalize(self, cfg: "Config", row: dict, rules: list[str]) -> dict:
        from nas.stages import table_card

        return table_card(cfg, row, rules)


class WannBackend(Backend):
    """Weight-agnostic networks (Gaier & Ha): every topology scored at shared weights, nothing
    trained during the search; selected networks get their best shared weight and tuned
    individual weights (:mod:`nas.wann.select`)."""

    kind = "wann"
    stages = ("prepare", "search", "select")
    worker_modules = ("nas.evaluators.wann", "nas.wann.tasks", "nas.wann.network")
    shares_process = True  # scoring draws nothing from torch; rollout seeds come from the candidate's seed

    def evaluator(self, cfg: "Config"):
        from nas.evaluators.wann import WannEvaluator
        from nas.genome import canonical_json

        return WannEvaluator(canonical_json(cfg.evaluation.wann.model_dump()), cfg.data.out_dir, cfg.seed)

    def search_setup(self, cfg: "Config", evaluator) -> SearchSetup:
        import numpy as np

        from nas.wann.select import task_and_space

        task, space = task_and_space(cfg)  # from the params, not evaluator.task: fault injection may wrap it
        low, high = task_score_range(task)
        box = {"mean_score": (-high, -low), "ensemble_score": (-high, -low), "max_score": (-high, -low),
               "connections": (0.0, float(space.connections(space.largest())))}
        ideal = np.array([box[o][0] for o in cfg.search.objectives])
        nadir = np.array([box[o][1] for o in cfg.search.objectives])
        return SearchSetup(space, [], ideal, nadir)

    def fingerprint_inputs(self, cfg: "Config") -> dict[str, Any]:
        out: dict[str, Any] = {"wann_task": cfg.evaluation.wann.task}
        if cfg.evaluation.wann.task == "classify":
            out.update(_DataBackend.fingerprint_inputs(self, cfg))
        return out

    def preflight(self, cfg: "Config", first: str | None) -> None:
        task = cfg.evaluation.wann.task
        if task not in ("classify", "swingup"):
            from nas.preflight import PreflightError
            from nas.wann.tasks import TaskError, make_env

            try:
                make_env(task).close()
            except TaskError as exc:
                raise PreflightError(str(exc)) from None
        if task == "classify" and first == "search":
            _need(Path(cfg.data.out_dir) / "data.npz", "prepared data", "evonas stage prepare")

    own_select = True

    def finalize(self, cfg: "Config", row: dict, rules: list[str]) -> dict:
        from nas.wann.select import finalize

        return finalize(cfg, row, rules)

    def select(self, cfg: "Config") -> dict:
        """The whole select stage (a WANN is chosen and reported by its own rules)."""
        from nas.wann.select import select

        return select(cfg)


class MetaBackend(_DataBackend):
    """Meta-learning searches (space.kind activation, loss, augmentation): each candidate is a
    component the fixed network is trained with (:mod:`nas.evaluators.meta`); the select stage
    chooses one on validation, tests it against the baseline and writes it for later runs
    (:mod:`nas.meta.select`)."""

    kind = "meta"
    stages = ("prepare", "search", "select")
    worker_modules = ("nas.evaluators.meta",)

    def evaluator(self, cfg: "Config"):
        from nas.evaluators.meta import MetaEvaluator
        from nas.genome import canonical_json
        from nas.meta.components import fixed_activation

        e = cfg.evaluation
        return MetaEvaluator(cfg.space.kind, canonical_json(e.meta.model_dump()),
                             json.dumps(fixed_activation(cfg)), cfg.data.out_dir, cfg.seed, e.device,
                             e.threads_per_worker)

    def search_setup(self, cfg: "Config", evaluator) -> SearchSetup:
        import numpy as np

        from nas.spaces.meta import from_config

        return SearchSetup(from_config(cfg), [], np.array([-1.0]), np.array([0.0]))

    def preflight(self, cfg: "Config", first: str | None) -> None:
        if first == "search":
            _need(Path(cfg.data.out_dir) / "data.npz", "prepared data", "evonas stage prepare")

    own_select = True

    def finalize(self, cfg: "Config", row: dict, rules: list[str]) -> dict:
        raise NotImplementedError("a meta-learning search selects in nas.meta.select")

    def select(self, cfg: "Config") -> dict:
        from nas.meta.select import select
        from nas.progress import console

        return select(cfg, lambda msg: console.print(msg, highlight=False))


def task_score_range(task) -> tuple[float, float]:
    """The normalisation box of a WANN task's performance (hypervolume only): accuracy in
    [0, 1]; mean log-likelihood in [-2 ln C, 0] (C classes; a uniform guess scores -ln C);
    swing-up returns in [0, steps]; other environments from their reward threshold."""
    kind = getattr(task, "kind", "")
    if kind == "classify":
        if task.score == "log_likelihood":
            import math

            return -2.0 * math.log(task.n_out), 0.0
        return 0.0, 1.0
    if kind == "swingup":
        return 0.0, float(task.max_steps or 1000)
    from nas.wann.tasks import make_env

    env = make_env(task.env_id)
    try:
        top = env.spec.reward_threshold
    finally:
        env.close()
    return -100.0, float(top) * 1.2 if top else 1000.0



BACKENDS: dict[str, Backend] = {b.kind: b for b in (InheritedBackend(), TrainBackend(), TableBackend(),
                                                  WannBackend(), MetaBackend())}
"""Every evaluation kind, by ``evaluation.kind``."""

STAGES_BY_EVALUATION: dict[str, tuple[str, ...]] = {k: b.stages for k, b in BACKENDS.items()}


def backend(cfg: "Config") -> Backend:
    """The backend of ``cfg.evaluation.kind`` (resolved from ``auto`` by the config)."""
    try:
        return BACKENDS[cfg.evaluation.kind]
    except KeyError:
        raise ValueError(f"evaluation.kind {cfg.evaluation.kind!r} has no backend; "
                         f"known: {', '.join(BACKENDS)}") from None


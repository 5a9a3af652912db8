"""The one typed configuration of a run, loaded once from ``params.yaml``.

Each pipeline stage owns one section (``data``, ``space``, ``supernet``, ...). Unknown
keys and wrong types are rejected with a message that names the dotted key and the bad
value; ``--set a.b=value`` overrides are parsed as YAML and applied before validation.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

OBJECTIVES = ("val_accuracy", "val_soft_accuracy", "params", "flops", "latency_ms")
"""Objectives a search can optimise. The accuracies are maximised, the others minimised."""

ACCURACY_OBJECTIVES = ("val_accuracy", "val_soft_accuracy")
"""The validation scores a search can rank on, one per search: ``val_accuracy`` (share of argmax
hits) or ``val_soft_accuracy`` (mean softmax probability of the true class: the expected accuracy of
a classifier that draws its answer from its softmax, with far less counting noise on a small
validation split; ``nas.training.accuracy_and_soft``)."""


def accuracy_objective(objectives: list[str]) -> str:
    """The validation score among ``objectives`` (``val_accuracy`` where they name none)."""
    return next((o for o in objectives if o in ACCURACY_OBJECTIVES), "val_accuracy")

WANN_OBJECTIVES = ("mean_score", "ensemble_score", "max_score", "connections")
"""Objectives of a weight-agnostic search (``space.kind: wann``): the performance over the shared
weights (mean and best; accuracy or return, maximised), for classification that of their
ensemble (maximised), and the enabled connections (minimised)."""
WANN_SCORES = ("mean_score", "ensemble_score")
"""The WANN objectives a search ranks on first (the first of them in ``search.objectives``)."""


def wann_score(objectives: list[str]) -> str:
    """What a weight-agnostic search ranks on first: the first of :data:`WANN_SCORES` in
    ``objectives`` (``mean_score`` where they name neither)."""
    return next((o for o in objectives if o in WANN_SCORES), "mean_score")

WANN_ACTIVATIONS = ("linear", "step", "sin", "cos", "gaussian", "tanh", "sigmoid", "inverse", "abs", "relu")

META_KINDS = ("activation", "loss", "augmentation")
"""Meta-learning searches (``space.kind``): a component every training can use, not an architecture."""
META_UNARY = ("neg", "abs", "square", "exp", "sigmoid", "tanh", "sin", "erf", "relu", "softplus")
META_BINARY = ("add", "sub", "mul", "max", "min")
AUGMENT_OPS = ("shift", "rotate", "shear", "scale", "cutout", "noise", "contrast")

CONSTRAINT_OBJECTIVE = {
    "max_params": "params",
    "max_flops": "flops",
    "max_latency_ms": "latency_ms",
    "min_val_accuracy": "val_accuracy",
}




class ConfigError(ValueError):
    """A params file or override that cannot be used; the message says what and where."""


def _mutation_weights(v: dict[str, float]) -> dict[str, float]:
    """Relative weights of mutation operators: none negative, at least one positive."""
    if any(w < 0 for w in v.values()) or not any(w > 0 for w in v.values()):
        raise ValueError(f"mutation weights must be non-negative with one positive, got {v}")
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSourceConfig(_Section):
    """One entry of ``data.datasets`` (``data.kind: multi``): a task source.

    digits, npz and folder entries are one task each (named by ``name``, else ``digits``, the
    file stem or the folder name); an omniglot entry is one task per alphabet.
    """

    kind: Literal["digits", "npz", "folder", "omniglot"] = Field(description=("source of this task: digits, npz, "
                                                                              "folder, or omniglot (one task per "
                                                                              "alphabet)"))
    path: str | None = Field(None, description="npz: .npz (x, y); folder: <class>/<image>; omniglot: zip or folder "
                             "<set>/<alphabet>/<character>/<image>.png, null = the packaged 5-alphabet subset")
    tasks: list[str] | None = Field(None, description="omniglot: alphabets to use (null: all)")
    name: str | None = Field(None, description="task name (digits, npz, folder; omniglot tasks are the alphabets)")

    @model_validator(mode="after")
    def _check(self) -> "DataSourceConfig":
        if self.kind in ("npz", "folder") and not self.path:
            raise ValueError(f"path is required for a data.datasets entry of kind '{self.kind}'")
        if self.kind == "digits" and self.path:
            raise ValueError("a data.datasets entry of kind 'digits' takes no path (the digits are bundled)")
        if self.tasks is not None and self.kind != "omniglot":
            raise ValueError(f"tasks selects Omniglot alphabets; a data.datasets entry of kind '{self.kind}' is "
                             "one task (use name to name it)")
        if self.name is not None and self.kind == "omniglot":
            raise ValueError("an omniglot entry of data.datasets is named by its alphabets; select them with tasks "
                             "instead of name")
        if self.name is not None and not self.name.strip():
            raise ValueError("name must not be empty")
        _check_task_list(self.tasks, "tasks")
        return self


def _check_task_list(tasks: list[str] | None, key: str) -> None:
    if tasks is None:
        return
    if not tasks:
        raise ValueError(f"{key} must name at least one alphabet (or be null for all)")
    dup = sorted({t for t in tasks if tasks.count(t) > 1})
    if dup:
        raise ValueError(f"{key} names {dup} more than once")


class DataConfig(_Section):
    """Where the examples come from. ``kind`` picks one source; ``kind: multi`` reads the list
    ``datasets`` instead (each entry its own task, an omniglot entry one task per alphabet) and
    is the only kind that reads it. ``omniglot_pooled`` (the default data) pools every character
    of the chosen alphabets into one classification task, split by writer. ``image_size`` null
    means 16 for folder and omniglot_pooled, 28 for omniglot and multi, and npz keeps its own
    size; digits always keep theirs (8x8; image_size is not read for them)."""

    kind: Literal["digits", "npz", "folder", "omniglot", "omniglot_pooled", "multi"] = Field("digits", description=(
            "dataset source. omniglot_pooled: every character of the chosen Omniglot alphabets is one class of a "
            "single task (136 classes for the packaged subset), split by writer (the drawer numbers shuffled once, "
            "seeded, and cut by omniglot_drawers, so no drawer's images fall in two splits; val_fraction and "
            "test_fraction are not read). digits: scikit-learn's 8x8 digits. npz, folder: a user's "
            "file or image folder (data.path). omniglot (one task per alphabet) and multi (the list data.datasets, "
            "one task each) give multi-task data"))
    path: str | None = Field(None, description="local .npz (x, y) or folder <class>/<image>; omniglot: zip or "
                             "folder <set>/<alphabet>/<character>/<image>.png, null = the packaged 5-alphabet "
                             "subset; unused for digits and multi")
    image_size: int | None = Field(None, gt=0, description="side length images are resized to; null: 16 for "
                                   "folder and omniglot_pooled, 28 for omniglot and multi, npz keeps its size "
                                   "(digits always keep 8x8)")
    grayscale: bool = Field(True, description="one channel (else three); multi: every task converted alike")
    tasks: list[str] | None = Field(None, description="omniglot, omniglot_pooled: alphabets to use (null: all)")
    datasets: list[DataSourceConfig] = Field(default_factory=list,
                                             description="kind multi: the task sources, one entry each")
    omniglot_drawers: tuple[int, int, int] = Field((12, 4, 4), description=(
        "omniglot, omniglot_pooled: drawers (writers) of each character's 20 to train / val / test; a set with "
        "another number of drawers is cut in proportion"))
    omniglot_rotations: Literal[1, 4] = Field(1, description=(
        "omniglot_pooled: 4 adds each character turned by 90, 180 and 270 degrees as three new classes (544 "
        "classes for the packaged subset, as in Vinyals et al. 2016 and Santoro et al. 2016), so every split "
        "holds 4x the images; a turned image keeps its writer's split. 1: the characters as drawn"))
    val_fraction: float = Field(0.15, gt=0, lt=1, description="validation share of each task's images (stratified)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="test share; val_fraction + test_fraction must be < 0.9")
    out_dir: str = Field("data/prepared", description="where the prepare stage writes data.npz and meta.json")

    @model_validator(mode="after")
    def _check(self) -> "DataConfig":
        if self.kind in ("npz", "folder") and not self.path:
            raise ValueError(f"data.path is required when data.kind is '{self.kind}'")
        if self.kind == "multi":
            if not self.datasets:
                raise ValueError("data.datasets must list at least one source when data.kind is 'multi'")
            if self.path:
                raise ValueError("data.path is not read when data.kind is 'multi': give each data.datasets entry "
                                 "its own path")
        elif self.datasets:
            raise ValueError(f"data.datasets is only read when data.kind is 'multi' (data.kind is '{self.kind}'): "
                             "set data.kind to 'multi' or remove data.datasets")
        if self.tasks is not None and self.kind not in ("omniglot", "omniglot_pooled"):
            hint = " (put tasks on the omniglot entry of data.datasets)" if self.kind == "multi" else ""
            raise ValueError(f"data.tasks selects Omniglot alphabets: only for data.kind 'omniglot' or 'omniglot_pooled', not "
                             f"'{self.kind}'{hint}")
        _check_task_list(self.tasks, "data.tasks")
        if self.omniglot_rotations != 1 and self.kind != "omniglot_pooled":
            raise ValueError(f"data.omniglot_rotations is only read when data.kind is 'omniglot_pooled' (data.kind is "
                             f"'{self.kind}'): set it to 1 or remove it")
        if min(self.omniglot_drawers) < 1 or sum(self.omniglot_drawers) != 20:
            raise ValueError(f"data.omniglot_drawers {list(self.omniglot_drawers)} must be three counts of at least 1 "
                             "(train, val, test) that add up to Omniglot's 20 drawers")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("data.val_fraction + data.test_fraction must leave at least 10% for training")
        return self

    def resolved_image_size(self) -> int | None:
        """The side length images end with; None: digits (always) and npz (image_size null) keep their own size."""
        if self.kind == "digits":
            return None
        if self.image_size is not None or self.kind == "npz":
            return self.image_size
        return {"folder": 16, "omniglot": 28, "omniglot_pooled": 16, "multi": 28}.get(self.kind)


class CoDeepNEATSpaceConfig(_Section):
    """The layers CoDeepNEAT modules are made of, and how large graphs may grow."""

    layers: list[Literal["conv", "dense", "maxpool", "avgpool", "dropout", "batchnorm", "activation"]] = Field(
        default_factory=lambda: ["conv", "dense", "maxpool", "avgpool", "dropout", "batchnorm", "activation"],
        min_length=1, description="layer types modules may contain")
    conv_channels: list[int] = Field(default_factory=lambda: [8, 16, 32, 64], min_length=1, description=(
            "conv layers: output channel choices (positive, increasing)"))
    conv_kernels: list[int] = Field(default_factory=lambda: [1, 3, 5], min_length=1, description=(
            "conv layers: kernel size choices (odd, increasing)"))
    dense_units: list[int] = Field(default_factory=lambda: [16, 32, 64, 128], min_length=1, description=(
            "dense layers: width choices (positive, increasing)"))
    dropout_rates: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.5], min_length=1, description=(
            "dropout layers: rate choices, each in (0, 1)"))
    activations: list[Literal["relu", "elu", "tanh", "gelu", "silu", "leaky_relu", "sigmoid", "identity"]] = Field(
        default_factory=lambda: ["relu", "elu", "tanh", "gelu", "silu"], min_length=1, description=(
                "activations of conv, dense and activation layers"))
    max_module_layers: int = Field(6, gt=0, description="layers per module at most")
    max_blueprint_modules: int = Field(5, gt=0, description="module slots per blueprint at most")

    @model_validator(mode="after")
    def _check(self) -> "CoDeepNEATSpaceConfig":
        for name in ("conv_channels", "conv_kernels", "dense_units"):
            vals = getattr(self, name)
            if any(v <= 0 for v in vals) or sorted(set(vals)) != vals:
                raise ValueError(f"space.codeepneat.{name} must be strictly increasing positive integers, got {vals}")
        if any(k % 2 == 0 for k in self.conv_kernels):
            raise ValueError(f"space.codeepneat.conv_kernels must be odd, got {self.conv_kernels}")
        if any(not 0 < r < 1 for r in self.dropout_rates):
            raise ValueError(f"space.codeepneat.dropout_rates must lie in (0, 1), got {self.dropout_rates}")
        return self


class DAGCellSpaceConfig(_Section):
    """NAS-Bench-101-style cells (space.kind dag_cell) and the stacked-cell network that trains them."""

    vertices: int = Field(7, ge=3, le=8, description="vertices of a cell, input and output included")
    max_edges: int = Field(9, gt=0, description="edges a cell may have after pruning")
    ops: list[Literal["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]] = Field(
        default_factory=lambda: ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"], min_length=2,
        description="operations of the interior vertices")
    channels: int = Field(16, gt=0, description="channels of the first stack (doubled per stack)")
    stacks: int = Field(3, gt=0, description="stacks of cells, a 2x2 max-pool between two stacks")
    cells_per_stack: int = Field(1, gt=0, description="cells per stack")

    @field_validator("ops")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"space.dag_cell.ops must be distinct, got {v}")
        return v


class RNNCellSpaceConfig(_Section):
    """NAS-Bench-NLP-style recurrent cells (space.kind rnn_cell) and the row-by-row classifier that trains them."""

    hidden: Literal[1, 2] = Field(2, description="recurrent states: 1 (GRU-like) or 2 (LSTM-like, with a cell state)")
    nodes: int = Field(14, gt=0, le=40, description="op nodes a cell may use")
    ops: list[Literal["linear", "blend", "elementwise_prod", "elementwise_sum", "activation_tanh", "activation_sigm",
                      "activation_leaky_relu"]] = Field(
        default_factory=lambda: ["linear", "blend", "elementwise_prod", "elementwise_sum", "activation_tanh",
                                 "activation_sigm", "activation_leaky_relu"], min_length=1,
        description="operations of the op nodes")
    hidden_size: int = Field(64, gt=0, description="width of the states (and of the embedded input rows)")

    @field_validator("ops")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"space.rnn_cell.ops must be distinct, got {v}")
        return v


class WANNSpaceConfig(_Section):
    """The weight-agnostic network space (space.kind wann): what a topology may hold and how it grows."""

    activations: list[Literal[WANN_ACTIVATIONS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(WANN_ACTIVATIONS), min_length=1, description="activations hidden nodes may take")
    out_act: Literal[WANN_ACTIVATIONS] = Field("linear", description=("activation of the output nodes"))  # type: ignore[valid-type]
    init_connection_prob: float = Field(0.25, gt=0, le=1, description="initial networks: probability of each "
                                        "input (and bias) to output connection")
    mutation: dict[Literal["add_node", "add_connection", "change_activation"], float] = Field(
        default_factory=lambda: {"add_node": 0.25, "add_connection": 0.25, "change_activation": 0.5},
        description="relative weights of the topology mutations")
    max_hidden: int = Field(200, gt=0, description="hidden nodes a network may hold")

    _weights = field_validator("mutation")(classmethod(lambda cls, v: _mutation_weights(v)))


class MetaSpaceConfig(_Section):
    """What the meta-learning searches (space.kind activation, loss, augmentation) may build."""

    unary: list[Literal[META_UNARY]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(META_UNARY), min_length=1, description="activation: unary operators of the trees")
    binary: list[Literal[META_BINARY]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(META_BINARY), min_length=1, description="activation: binary operators")
    max_depth: int = Field(4, ge=2, description="activation: tree depth at most")
    max_size: int = Field(9, ge=2, description="activation: tree nodes at most")
    param_prob: float = Field(0.2, ge=0, le=1, description="activation: chance that a change mutation also adds or "
                              "perturbs a learnable scale")
    loss_init: Literal["cross_entropy", "zero"] = Field(
        "cross_entropy", description="loss: CMA-ES starts at the Taylor expansion of cross-entropy, or at zero")
    loss_sigma: float = Field(0.5, gt=0, description="loss: CMA-ES initial step size")
    augment_ops: list[Literal[AUGMENT_OPS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(AUGMENT_OPS), min_length=1, description=("augmentation: operations a policy may"
                                                                              " use"))
    augment_max_ops: int = Field(4, gt=0, description="augmentation: entries in a policy at most")
    augment_phases: int = Field(
        1, gt=0, le=20, description="augmentation: 1 searches one policy for the whole training; more searches a "
        "schedule (PBA): that many policies, each applied for an equal share of the epochs")


class SpaceConfig(_Section):
    """The search space (space.kind) and each space's own settings; the top-level keys shape the elastic CNN."""

    kind: Literal["elastic_cnn", "nb201", "dag_cell", "rnn_cell", "codeepneat", "wann", "activation", "loss",
                  "augmentation"] = Field(
        "elastic_cnn", description="architecture spaces (dag_cell: NAS-Bench-101-style cells; rnn_cell: "
        "NAS-Bench-NLP-style recurrent cells reading images row by row), or a meta-learning "
        "search (activation, loss, augmentation: a component every training can then use)")
    activation: str = Field(
        "default", description="the activation of elastic_cnn and nb201 networks (and an extra choice of CoDeepNEAT "
        "modules): default (ReLU6 / ReLU), relu, swish, tanh, softplus, an expression such as 'x * sigmoid(x)', or "
        "the activation.json of an activation search")
    meta: MetaSpaceConfig = Field(default_factory=MetaSpaceConfig)

    _act = field_validator("activation")(classmethod(lambda cls, v: _check_component("activation", v)))
    stem_channels: int = Field(16, gt=0, description="elastic_cnn: stem output channels")
    stage_channels: list[int] = Field(default_factory=lambda: [16, 24, 32], min_length=1, description=(
            "elastic_cnn: output channels per stage; one entry per stage"))
    stage_strides: list[int] = Field(default_factory=lambda: [1, 2, 2], min_length=1, description=(
            "elastic_cnn: stride of each stage's first block; same length as stage_channels"))
    depths: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1, description=(
            "elastic depth choices per stage"))
    kernel_sizes: list[int] = Field(default_factory=lambda: [3, 5, 7], min_length=1, description=(
            "elastic_cnn: depthwise kernel choices per block (positive, odd, strictly increasing)"))
    expand_ratios: list[int] = Field(default_factory=lambda: [2, 4, 6], min_length=1, description=(
            "elastic_cnn: MBConv expand-ratio choices per block (positive, strictly increasing)"))
    width_multipliers: list[float] = Field(default_factory=lambda: [1.0], min_length=1, description=(
            "elastic_cnn: elastic width (BigNAS, Once-for-All's width multiplier): the choices of each stage's "
            "channels as fractions of stage_channels (in (0, 1], strictly increasing; rounded, at least 1 channel). "
            "One value: no width genes"))
    nb201_channels: int = Field(16, gt=0, description="nb201: channels of the first stage (doubled per stage)")
    nb201_cells: int = Field(5, gt=0, description="nb201: cells per stage")
    crossover: Literal["uniform", "sep"] = Field(
        "uniform", description="nb201, dag_cell and rnn_cell: how two cells are crossed (uniform: each gene of the encoding "
        "from either parent; sep: Shortest-Edit-Path crossover on the cell graphs)")
    dag_cell: DAGCellSpaceConfig = Field(default_factory=DAGCellSpaceConfig)
    rnn_cell: RNNCellSpaceConfig = Field(default_factory=RNNCellSpaceConfig)
    codeepneat: CoDeepNEATSpaceConfig = Field(default_factory=CoDeepNEATSpaceConfig)
    wann: WANNSpaceConfig = Field(default_factory=WANNSpaceConfig)
    multitask: Literal["none", "heads", "routing"] = Field(
        "none", description="codeepneat on multi-task data: one evolved network with a head per task (heads), or "
        "shared modules with a topology per task (routing)")
    routing_channels: int = Field(32, gt=0, description="routing: width of every shared module (and of the stem)")

    @model_validator(mode="after")
    def _check(self) -> "SpaceConfig":
        if len(self.stage_channels) != len(self.stage_strides):
            raise ValueError("space.stage_channels and space.stage_strides must have the same length")
        for name in ("depths", "kernel_sizes", "expand_ratios", "stage_channels", "stage_strides"):
            vals = getattr(self, name)
            if any(v <= 0 for v in vals):
                raise ValueError(f"space.{name} must be positive integers, got {vals}")
        w = self.width_multipliers
        if any(not 0 < m <= 1 for m in w) or sorted(set(w)) != list(w):
            raise ValueError(f"space.width_multipliers must be strictly increasing fractions in (0, 1], got {list(w)}")
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"space.kernel_sizes must be odd, got {self.kernel_sizes}")
        if sorted(set(self.depths)) != self.depths or sorted(set(self.kernel_sizes)) != self.kernel_sizes \
                or sorted(set(self.expand_ratios)) != self.expand_ratios:
            raise ValueError("space.depths, space.kernel_sizes and space.expand_ratios must be strictly increasing")
        return self


class SupernetConfig(_Section):
    """The pretrain stage: the weight-sharing supernet of the elastic CNN space, trained once with the sandwich rule."""

    epochs: int = Field(40, gt=0, description="supernet training epochs")
    batch_size: int = Field(64, gt=0, description="supernet mini-batch size")
    lr: float = Field(0.05, gt=0, description="initial SGD learning rate (cosine-annealed)")
    weight_decay: float = Field(3e-5, ge=0, description="SGD weight decay")
    random_subnets: int = Field(2, ge=0, description=("random subnets per step besides largest and smallest "
                                                      "(sandwich rule)"))
    distill: bool = Field(True, description="in-place distillation (BigNAS, OFA): every subnet but the largest "
                          "learns the largest subnet's predictions on the same batch instead of the labels")
    distill_label_weight: float = Field(0.0, ge=0, le=1, description=(
        "with distill: the labels' share in the loss of every subnet but the largest (0: the largest one's "
        "predictions only; 0.5: half each)"))
    progressive_epochs: list[int] = Field(default_factory=list, description=(
        "progressive shrinking (Once-for-All): the epochs at which kernel size, depth, expand ratio and width, in "
        "that order, become elastic (three or four non-decreasing epochs; with three, width joins with expand; "
        "before the first only the largest subnet trains). Empty: every dimension is elastic from the start"))
    progressive: list[float] = Field(default_factory=list, description=(
        "progressive shrinking as fractions of supernet.epochs (each rounded to the nearest epoch, at most the "
        "last): the same schedule as progressive_epochs, kept when supernet.epochs changes; e.g. [0.15, 0.3, 0.5, "
        "0.7] is epochs [3, 7, 11, 15] of 22. Set this or progressive_epochs, not both"))
    seed: Optional[int] = Field(None, ge=0, description=(
        "the supernet training's own seed (weights' initialisation, batches, sampled subnets); default: the "
        "run's seed. Another value trains another supernet on the same data split"))
    out_dir: str = Field("artifacts/supernet", description=("where the supernet, its cost table and its BN "
                                                            "statistics are saved"))

    @model_validator(mode="after")
    def _check_progressive(self):
        pe = self.progressive_epochs
        if pe and (len(pe) not in (3, 4) or any(e < 0 for e in pe) or list(pe) != sorted(pe) or pe[-1] >= self.epochs):
            raise ValueError(f"supernet.progressive_epochs must be empty or three or four non-decreasing epochs below "
                             f"supernet.epochs ({self.epochs}): the epochs at which kernel, depth, expand (and "
                             f"width; with three entries width joins with expand) become elastic; got {list(pe)}")
        pf = self.progressive
        if pf and (len(pf) not in (3, 4) or any(not 0 <= f < 1 for f in pf) or list(pf) != sorted(pf)):
            raise ValueError(f"supernet.progressive must be empty or three or four non-decreasing fractions of "
                             f"supernet.epochs in [0, 1): when kernel, depth, expand (and width) become elastic; "
                             f"got {list(pf)}")
        if pe and pf:
            raise ValueError(f"supernet.progressive ({list(pf)}) and supernet.progressive_epochs ({list(pe)}) both "
                             f"set: give the schedule once, as fractions or as epochs (set the other to [])")
        return self

    def progressive_schedule(self) -> list[int]:
        """The epochs at which the elastic dimensions are released: ``progressive_epochs``, or
        ``progressive``'s fractions of ``epochs`` rounded to the nearest epoch (at most the last);
        empty without progressive shrinking."""
        if self.progressive_epochs:
            return list(self.progressive_epochs)
        return [min(self.epochs - 1, math.floor(f * self.epochs + 0.5)) for f in self.progressive]


class SurrogateConfig(_Section):
    """The surrogate stage: subnets sampled and scored with inherited weights, and the regressor ensemble fitted to them (also refitted by MSuNAS during search)."""

    n_samples: int = Field(120, ge=8, description="subnets sampled and scored with inherited weights")
    holdout_fraction: float = Field(0.25, gt=0, lt=1, description=("share of the sampled subnets held out to report "
                                                                   "the surrogate's Kendall tau and Spearman (at "
                                                                   "least 3 samples)"))
    models: list[Literal["random_forest", "extra_trees", "gradient_boosting", "knn", "ridge", "mlp"]] = Field(
        default_factory=lambda: ["random_forest", "extra_trees", "gradient_boosting", "ridge"], min_length=1, description=(
                "candidate regressors, ranked by cross-validated Spearman"))
    ensemble_size: int = Field(2, gt=0, description="best models (by CV rank correlation) averaged")
    cv_folds: int = Field(4, ge=2, description="cross-validation folds for ranking the regressors")
    out_dir: str = Field("artifacts/surrogate", description="where samples.json and surrogate.json go")


class AsyncConfig(_Section):
    """search.mode async: K candidates in flight, the strategy told every M results (search.async)."""

    in_flight: int = Field(8, gt=0, description="K: candidates kept in flight on the Dask workers")
    batch: int = Field(2, gt=0, description="M: results that trigger one strategy update and M new submissions")
    budget: Optional[int] = Field(None, gt=0, description=("completed evaluations; default population x (generations"
                                                           " + 1)"))
    surrogate_refit: int = Field(
        8, gt=0, description="msunas: refit the surrogate (and rerun its inner NSGA-II) after this many new results")
    drain: Literal["cancel", "await", "finish"] = Field(
        "cancel", description=("at the budget: cancel what is still in flight, or await it (and keep its results);"
                               " finish: never submit more than the budget, and let the last ones run to the end (with await and finish"
                               " an elastic cluster evonas started, Slurm or an adaptive LocalCluster, retires its workers"
                               " as they fall idle meanwhile)"))

    @model_validator(mode="after")
    def _batch(self) -> "AsyncConfig":
        if self.batch > self.in_flight:
            raise ValueError(f"batch ({self.batch}) cannot exceed in_flight ({self.in_flight})")
        return self


ASYNC_STRATEGIES = ("random", "aging", "local_search", "thompson", "nsga2", "msunas", "codeepneat", "wann",
                    "reinforce")
DAG_STRATEGIES = ("aging", "random", "reinforce")  # what works on cells that not every vector encodes
CELL_KINDS = ("dag_cell", "rnn_cell")
GRAPH_STRATEGIES = ("codeepneat", "random")  # what works on graph genomes (space.kind codeepneat)


class CoDeepNEATConfig(_Section):
    """Coevolution of modules and blueprints (search.strategy codeepneat)."""

    module_population: int = Field(20, gt=1, description="modules kept")
    blueprint_population: int = Field(10, gt=1, description="blueprints kept")
    module_species: int = Field(3, gt=0, description="target number of module species")
    blueprint_species: int = Field(2, gt=0, description="target number of blueprint species")
    elitism: int = Field(1, ge=0, description="best members of each species kept unchanged")
    survival_threshold: float = Field(0.5, gt=0, le=1, description="share of each species that may reproduce")
    stagnation: int = Field(6, gt=0, description="generations without improvement before a species is culled")
    crossover: Literal["sep", "none"] = Field("sep", description="Shortest-Edit-Path crossover, or mutation only")
    crossover_prob: float = Field(0.5, ge=0, le=1, description="share of offspring made by crossover")
    mutation: dict[Literal["add_layer", "remove_layer", "add_edge", "remove_edge", "change_layer", "mutate_param"],
                   float] = Field(default_factory=lambda: {"add_layer": 0.25, "remove_layer": 0.1, "add_edge": 0.15,
                                                           "remove_edge": 0.05, "change_layer": 0.15,
                                                           "mutate_param": 0.3},
                                  description="relative weights of the mutation operators")

    _weights = field_validator("mutation")(classmethod(lambda cls, v: _mutation_weights(v)))


class WANNSearchConfig(_Section):
    """Ranking and reproduction of the weight-agnostic search (search.strategy wann)."""

    conn_rank_prob: float = Field(0.8, ge=0, le=1, description="probability that a ranking uses (mean performance, "
                                  "connections) rather than (mean performance, max performance)")
    elite_ratio: float = Field(0.2, ge=0, lt=1, description="best share of the population kept unchanged")
    cull_ratio: float = Field(0.2, ge=0, lt=1, description="worst share of the population that may not reproduce")
    tournament: int = Field(8, gt=0, description="tournament size of parent selection")
    mutations: int = Field(1, gt=0, description="topology mutations applied to each child")


class SearchConfig(_Section):
    """The search stage: strategy, budget, mode (generational or async) and objectives."""

    mode: Literal["generational", "async"] = Field(
        "generational", description="generational: evaluate a whole population, then evolve; async: keep "
        "search.async.in_flight candidates in flight and evolve whenever search.async.batch return")
    async_: AsyncConfig = Field(default_factory=AsyncConfig, alias="async")
    strategy: Literal["auto", "msunas", "nsga2", "aging", "local_search", "thompson", "random", "codeepneat",
                      "wann", "cma", "reinforce"] = Field(
        "auto", description="auto: msunas on elastic_cnn, aging on nb201, dag_cell, activation and augmentation, "
        "codeepneat on "        "codeepneat, wann on wann, cma (CMA-ES) on loss")
    codeepneat: CoDeepNEATConfig = Field(default_factory=CoDeepNEATConfig)
    wann: WANNSearchConfig = Field(default_factory=WANNSearchConfig)
    population: int = Field(24, gt=1, description="candidates truly evaluated per generation")
    generations: int = Field(6, gt=0, description="generations after the initial population")
    objectives: list[str] = Field(default_factory=lambda: ["val_accuracy", "params", "latency_ms"], min_length=1, description=(
            "objectives: the validation score (val_accuracy, or val_soft_accuracy: the mean softmax probability "
            "of the true class, which ranks networks with less noise on a small validation split) is maximised, the "
            "others minimised; one validation score per search. elastic_cnn and other trained spaces: "
            "val_accuracy or val_soft_accuracy, params, flops, latency_ms; evaluation.kind table: val_accuracy and "
            "the names in evaluation.table.cost_columns; wann: mean_score, ensemble_score (classify: the shared "
            "weights' ensemble; the search ranks on the first of the two it is given), max_score, connections; "
            "meta-learning: "
            "[val_accuracy]"))
    constraints: dict[str, float] = Field(default_factory=dict, description=("hard constraints during search and for"
                                                                             " the front: max_params, max_flops, "
                                                                             "max_latency_ms, min_val_accuracy, e.g."
                                                                             " {max_params: 40000, max_latency_ms: "
                                                                             "2.0}"))
    seed: Optional[int] = Field(None, ge=0, description=(
        "the search strategy's own seed (its proposals: sampling, mutation, crossover, selection); default: the "
        "run's seed. Another value runs an independent search on the same data split, supernet and per-candidate "
        "evaluation seeds"))
    surrogate_generations: int = Field(30, gt=0, description="MSuNAS: inner NSGA-II generations on the surrogate")
    surrogate_population: int = Field(60, gt=1, description="MSuNAS: inner NSGA-II population")
    aging_population: int = Field(20, gt=1, description="aging evolution: population (FIFO) size")
    aging_tournament: int = Field(5, gt=0, description="aging evolution: tournament size")
    aging_crossover_prob: float = Field(
        0.0, ge=0, le=1, description="aging evolution: share of children made by crossover (space.crossover)")
    aging_elitist: bool = Field(
        False, description=("aging evolution, several objectives: draw tournament members from the population and the "
                            "non-dominated set of everything evaluated, and pick by rank in that pool, then crowding "
                            "distance (NSGA-II's order), so the best trade-offs stay parents after they age out; "
                            "recommended for asynchronous search at scale (benchmarks/results/README.md)"))
    reinforce_lr: float = Field(0.1, gt=0, description="reinforce: learning rate of the controller's logits")
    reinforce_normalise: bool = Field(
        True, description="reinforce: divide the advantage by the rewards' running standard deviation (so the learning "
        "rate does not depend on the reward's scale)")
    thompson_init: int = Field(5, gt=0, description="thompson: random architectures before the model proposes")
    thompson_interaction_prior: float = Field(
        50.0, gt=0, description="thompson: prior precision of pairwise gene interactions (higher = closer to additive)")
    thompson_noise: float = Field(0.4, gt=0, description="thompson: observation noise, in normal-score units")
    thompson_primary_every: int = Field(
        3, ge=0, description=("thompson, several objectives: every N-th proposal optimises the first objective alone"
                              " (0 = never)"))
    thompson_primary_start: int = Field(
        25, ge=0, description="thompson: proposals (random ones included) before the first primary-objective step")
    checkpoint_every: int = Field(
        1, gt=0, description="generational mode: write the search checkpoint every N generations (each result is "
        "journaled as it arrives either way; a resume re-asks the generations since the checkpoint and takes their "
        "results from the journal). A save appends only what is new since the last one, but it flushes to disk and "
        "rewrites the generation log: for generations of milliseconds (WANN) every 25 is plenty")
    out_dir: str = Field("artifacts/search", description="where populations/, the checkpoint and summary.json go")

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="after")
    def _mode(self) -> "SearchConfig":
        if self.mode == "async" and self.strategy not in ASYNC_STRATEGIES:
            raise ValueError(f"search.mode 'async' is not available for search.strategy '{self.strategy}' yet "
                             f"(its ask/tell works a whole generation at a time); use one of {list(ASYNC_STRATEGIES)}")
        return self

    @property
    def async_budget(self) -> int:
        return self.async_.budget or self.population * (self.generations + 1)

    @property
    def accuracy_objective(self) -> str:
        """The validation score this search ranks on (``val_accuracy`` where it names none)."""
        return accuracy_objective(self.objectives)

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"objectives repeated: {v}")
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k in v if k not in CONSTRAINT_OBJECTIVE]
        if bad:
            raise ValueError(f"unknown constraint(s) {bad}; choose from {list(CONSTRAINT_OBJECTIVE)}")
        return v


class SelectionConfig(_Section):
    """The select stage: rules that pick models from the front, stand-alone fine-tuning, reports."""

    rules: list[Literal["knee", "best_accuracy", "best_under_constraints", "spread"]] = Field(
        default_factory=lambda: ["knee", "best_accuracy", "spread"], min_length=1, description=(
                "selection rules applied to the front: knee, best_accuracy, best_under_constraints (one pick per "
                "entry of selection.constraints), spread (selection.n_spread models evenly along the front)"))
    constraints: list[dict[str, float]] = Field(
        default_factory=list, description=("for best_under_constraints: each entry picks the most accurate model "
                                           "meeting it"))
    n_spread: int = Field(3, ge=0, description="models picked evenly along the front by the spread rule")
    finetune_epochs: int = Field(15, ge=0, description=("stand-alone fine-tuning epochs per selected model; 0 = BN "
                                                        "recalibration only"))
    finetune_lr: float = Field(0.01, gt=0, description="fine-tuning learning rate")
    batch_size: int = Field(64, gt=0, description="fine-tuning batch size")
    out_dir: str = Field("artifacts/select", description=("where pareto.csv and models/ (weights, ONNX, "
                                                          "torch.export, model cards) go"))
    reports_dir: str = Field("reports", description=("where metrics.json, pareto.png, hypervolume.csv, "
                                                     "surrogate.json and report.html go"))

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: list[dict[str, float]]) -> list[dict[str, float]]:
        for entry in v:
            bad = [k for k in entry if k not in CONSTRAINT_OBJECTIVE]
            if bad:
                raise ValueError(f"unknown constraint(s) {bad}; choose from {list(CONSTRAINT_OBJECTIVE)}")
        return v


class TableConfig(_Section):
    """A benchmark table read by column names (NAS-Bench-201 and tables of the same shape)."""

    path: str | None = Field(None, description="the benchmark table (CSV); required with evaluation.kind table")
    arch_column: str = Field("arch_str", description="column of NAS-Bench-201 arch strings")
    signal_column: str = Field("val_acc_12ep", description="what the strategy sees (reported as val_accuracy)")
    report_column: str = Field("test_acc_200ep", description="reported for selected candidates (test_accuracy)")
    cost_columns: list[str] = Field(default_factory=list, description=("table columns (or params/flops) usable as "
                                                                       "objectives"))
    sim_seconds: float = Field(0.0, ge=0, description="simulated evaluation time per candidate (constant part)")
    sim_seconds_column: str | None = Field(None, description="simulated time proportional to this column")
    sim_scale: float = Field(1.0, ge=0, description="seconds per unit of sim_seconds_column")


class FaultsConfig(_Section):
    """Fault injection for rehearsing failure handling (off by default): the share of
    candidates, chosen by their per-candidate seed, that raise, report NaN, or hang."""

    error_rate: float = Field(0.0, ge=0, le=1, description="share of candidates whose evaluation raises")
    nan_rate: float = Field(0.0, ge=0, le=1, description="share whose accuracy comes back NaN")
    hang_rate: float = Field(0.0, ge=0, le=1, description="share that hang for hang_seconds (see timeout_s)")
    hang_seconds: float = Field(60.0, gt=0, description=("how long a hanging candidate hangs (cut short by "
                                                         "evaluation.timeout_s)"))

    @model_validator(mode="after")
    def _total(self):
        if self.error_rate + self.nan_rate + self.hang_rate > 1:
            raise ValueError("error_rate + nan_rate + hang_rate must be at most 1")
        return self

    @property
    def active(self) -> bool:
        return self.error_rate + self.nan_rate + self.hang_rate > 0


class SlurmConfig(_Section):
    """Dask workers as Slurm jobs (dask-jobqueue's SLURMCluster), for ``evaluation.cluster: slurm``."""

    queue: Optional[str] = Field(None, description="partition (#SBATCH -p)")
    account: Optional[str] = Field(None, description="account to charge (#SBATCH -A)")
    jobs: int = Field(2, gt=0, description="Slurm jobs, one Dask worker each")
    cores: int = Field(1, gt=0, description="cores per job (one evaluation thread per core)")
    memory: str = Field("4GB", description="memory per job, e.g. 4GB")
    walltime: str = Field("02:00:00", description="wall time per job (HH:MM:SS)")
    job_extra_directives: list[str] = Field(default_factory=list, description=(
            "extra #SBATCH lines, e.g. ['--gres=gpu:1']"))
    job_script_prologue: list[str] = Field(default_factory=list, description="shell lines run before the worker starts")
    interface: Optional[str] = Field(None, description="network interface the scheduler and workers use, e.g. ib0")
    log_directory: str = Field("logs/dask", description="where Slurm writes the workers' output")


class WANNEvaluationConfig(_Section):
    """What a weight-agnostic network is scored on (evaluation.kind wann) and how selected ones are tuned."""

    task: str = Field("classify", description="classify: the prepared data (images flattened); swingup: CartPole "
                      "swing-up (built in); otherwise a gymnasium environment id with a Box observation and a Box "
                      "action space, e.g. BipedalWalker-v3")
    weights: list[float] = Field(default_factory=lambda: [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], min_length=1,
                                 description="the shared weight values every network is scored at")
    rollouts: int = Field(4, gt=0, description="control: episodes per shared weight (each its own seed)")
    max_steps: Optional[int] = Field(None, gt=0, description="control: steps per episode (null: 1000 for swingup, "
                                     "the environment's own limit otherwise)")
    fitness_samples: Optional[int] = Field(None, gt=0, description="classify: training images a network is scored "
                                           "on (null: all); a fixed seeded subset")
    classify_score: Literal["accuracy", "log_likelihood"] = Field(
        "accuracy", description="classify: the performance the search sees at each shared weight: accuracy, or "
        "the mean log-likelihood of the true class (the softmax of the outputs; each image's term floored at -50, "
        "as are non-finite outputs), a smoother signal that also rewards confident, calibrated outputs. Reports, "
        "selection and tuning use accuracy either way")
    tune_steps: int = Field(300, ge=0, description="selected networks: gradient steps (classify) or REINFORCE "
                            "iterations (control) tuning each connection's weight")
    tune_lr: float = Field(0.05, gt=0, description="learning rate of the weight tuning (Adam)")
    tune_weight_decay: float = Field(0.0, ge=0, description="classify: decoupled weight decay of the tuning "
                                     "(AdamW; 0 = plain Adam)")
    tune_input_noise: float = Field(0.0, ge=0, description="classify: standard deviation of Gaussian noise added "
                                    "to the training inputs at every tuning step (fresh each step, seeded by the "
                                    "candidate; prepared inputs are standardised, so 0.4 is 0.4 of a pixel's "
                                    "spread); 0 = none. A regulariser: long-searched networks otherwise fit the "
                                    "training images exactly and lose on validation")
    tune_val_every: int = Field(10, ge=0, description="classify: tuning steps between scorings on the validation "
                                "images; the best weights seen (the start included) are kept. 0 = keep the last "
                                "step's weights")
    tuner: Literal["reinforce", "cmaes"] = Field("reinforce", description="control: how selected networks' "
                                                 "individual weights are tuned: REINFORCE (Adam on reward-to-go "
                                                 "advantages) or CMA-ES (the cma package); classification always "
                                                 "tunes by gradient descent")
    cmaes_sigma: float = Field(0.5, gt=0, description="control, tuner cmaes: initial step size around the best "
                               "shared weight")
    cmaes_popsize: Optional[int] = Field(None, ge=2, description="control, tuner cmaes: weight vectors per "
                                         "iteration (null: cma's default, 4 + 3 ln(connections))")
    cmaes_episodes: int = Field(8, gt=0, description="control, tuner cmaes: episodes each weight vector is scored "
                                "on per iteration (the same start states for every vector)")
    reinforce_sigma: float = Field(0.1, gt=0, description="control: std of the Gaussian exploration noise on actions")
    reinforce_episodes: int = Field(8, gt=0, description="control: episodes per REINFORCE iteration")
    test_rollouts: int = Field(32, gt=0, description="control: episodes each reported figure averages over")

    @field_validator("weights")
    @classmethod
    def _nonzero(cls, v: list[float]) -> list[float]:
        if any(w == 0 for w in v):
            raise ValueError("a shared weight of 0 makes every network output a constant; leave it out")
        return v

    @model_validator(mode="after")
    def _tuner_for_control(self):
        if self.tuner == "cmaes" and self.task == "classify":
            raise ValueError("tuner cmaes tunes control tasks; classification tunes its weights by gradient "
                             "descent (leave tuner at reinforce, which classify ignores)")
        return self


class MetaEvaluationConfig(_Section):
    """How a meta-learning candidate (activation, loss or augmentation policy) is scored: a fixed
    network (conv-BN-activation blocks, global pooling, linear) trained with it from AutoInit."""

    channels: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1,
                                description="the fixed network: channels of its blocks (stride 2 after the first)")
    activation: str = Field("relu", description="the fixed network's activation in loss and augmentation searches")
    epochs: int = Field(15, gt=0, description="training epochs of each candidate")
    lr: float = Field(0.8, gt=0, description="SGD learning rate; 0.8 is the baseline's best on validation on the "
                      "default data (ReLU, cross-entropy, no augmentation; of 0.05-1.6), so no component wins by "
                      "merely changing the step size")
    batch_size: int = Field(64, gt=0, description="mini-batch size of each candidate's training")
    select_top: int = Field(3, gt=0, description="select: best candidates by search validation accuracy that are "
                            "retrained on fresh seeds")
    select_seeds: int = Field(3, gt=0, description="select: fresh seeds per retrained candidate (validation only "
                              "chooses)")
    test_seeds: int = Field(5, gt=0, description="select: seeds the chosen component and the baseline are trained "
                            "with for the test report")

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[int]) -> list[int]:
        if any(c <= 0 for c in v):
            raise ValueError(f"evaluation.meta.channels must be positive, got {v}")
        return v

    _act = field_validator("activation")(classmethod(lambda cls, v: _check_component("activation", v)))


class AdaptiveConfig(_Section):
    """Dask's adaptive scaling of the LocalCluster, between these bounds: workers are added while
    candidates wait, kept while the search runs, and removed as they fall idle once nothing more
    will be submitted (a generational search's last generation, an asynchronous search's drain)."""

    minimum: int = Field(1, ge=0, description="workers kept at least")
    maximum: int = Field(4, gt=0, description="workers at most")

    @model_validator(mode="after")
    def _bounds(self) -> "AdaptiveConfig":
        if self.minimum > self.maximum:
            raise ValueError(f"evaluation.adaptive.minimum ({self.minimum}) exceeds maximum ({self.maximum})")
        return self


class EvaluationConfig(_Section):
    """How candidates are evaluated (evaluation.kind), where (Dask: local workers, a scheduler address, Slurm) and with what limits."""

    kind: Literal["auto", "inherited", "train", "table", "wann", "meta"] = Field(
        "auto", description="supernet-inherited weights, stand-alone training from scratch, table lookup, "
        "weight-agnostic scoring at shared weights, or a fixed network trained with a candidate component (meta); "
        "auto: inherited on elastic_cnn, wann on wann, meta on activation, loss and augmentation, train on the "
        "other spaces")
    wann: WANNEvaluationConfig = Field(default_factory=WANNEvaluationConfig)
    meta: MetaEvaluationConfig = Field(default_factory=MetaEvaluationConfig)
    loss: str = Field("cross_entropy", description="the loss of every training (supernet, candidates, fine-tuning): "
                      "cross_entropy, or the loss.json of a loss search")
    augmentation: str = Field("none", description="the batch augmentation of every training: none, hand_made, or "
                              "the augmentation.json of an augmentation search")
    init: Literal["autoinit", "default"] = Field(
        "default", description="weights of networks built from scratch: AutoInit, or torch's default")
    train_epochs: int = Field(5, gt=0, description="kind train: epochs each candidate is trained")
    train_lr: float = Field(0.05, gt=0, description="kind train: learning rate")
    train_batch_size: int = Field(64, gt=0, description="kind train: batch size")
    table: TableConfig = Field(default_factory=TableConfig)
    workers: int = Field(2, gt=0, description="Dask LocalCluster worker processes")
    threads_per_worker: int = Field(
        1, gt=0, description="candidates one Dask worker process runs at once; more than 1 only for table "
        "lookups (training and inherited-weight evaluations draw from torch's process-wide generator, so they "
        "are rejected); give more candidates at once through evaluation.workers instead")
    chunk_size: int = Field(
        1, gt=0, description="generational searches: up to this many candidates per Dask task (fewer when a "
        "generation would give a worker under 4 tasks), for evaluations of milliseconds (wann, table) where Dask's "
        "own cost per task dominates; a chunk that fails outside its candidates is split. Asynchronous searches "
        "submit one candidate per task")
    scheduler_address: str | None = Field(None, description="tcp://host:port of an existing Dask scheduler")
    cluster: Literal["local", "slurm"] = Field(
        "local", description=("without scheduler_address: a LocalCluster, or Dask workers as Slurm jobs "
                              "(evaluation.slurm)"))
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    adaptive: Optional[AdaptiveConfig] = Field(
        None, description="a LocalCluster that Dask scales between adaptive.minimum and adaptive.maximum workers "
        "(evaluation.workers is then ignored); null: a fixed evaluation.workers")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description=("device for training and accuracy (auto: "
                                                                        "CUDA if available; on CUDA, torch's "
                                                                        "deterministic algorithms, so a rerun "
                                                                        "repeats); latency is always measured on CPU"))
    bn_batches: int = Field(4, gt=0, description="training batches used to recalibrate BatchNorm of a subnet")
    batch_size: int = Field(128, gt=0, description="batch size for BN recalibration and inherited-weight scoring")
    inherited_finetune_epochs: int = Field(
        0, ge=0, description=("epochs of fine-tuning (SGD, cross-entropy, batches of train_batch_size) each "
                              "subnet gets from its inherited weights before it is scored; 0: none. One epoch "
                              "ranked one supernet's subnets better in benchmarks/supernet_ranking.py but not "
                              "those of two other supernet seeds; it costs about 2 s per candidate on a CPU core"))
    inherited_finetune_lr: float = Field(0.01, gt=0, description="learning rate of inherited_finetune_epochs "
                                                                  "(cosine schedule)")
    latency_repeats: int = Field(30, gt=0, description=("timed batch-1 forward passes (median reported); for the "
                                                        "supernet, per layer of the cost table (pretrain stage)"))
    latency_warmup: int = Field(5, ge=0, description="untimed warm-up passes before timing")
    timeout_s: Optional[float] = Field(
        None, gt=0, description="a candidate still running after this many seconds is recorded as 'timeout'")
    faults: FaultsConfig = Field(default_factory=FaultsConfig)

    _loss = field_validator("loss")(classmethod(lambda cls, v: _check_component("loss", v)))
    _aug = field_validator("augmentation")(classmethod(lambda cls, v: _check_component("augmentation", v)))

    @model_validator(mode="after")
    def _where(self):
        if self.cluster == "slurm" and self.scheduler_address:
            raise ValueError("evaluation.cluster 'slurm' starts its own scheduler: leave evaluation.scheduler_address unset")
        return self


class Config(_Section):
    seed: int = Field(0, description=("base seed for splits, supernet training, sampling, strategies and "
                                      "per-candidate seeds"))
    data: DataConfig = Field(default_factory=DataConfig)
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    supernet: SupernetConfig = Field(default_factory=SupernetConfig)
    surrogate: SurrogateConfig = Field(default_factory=SurrogateConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @model_validator(mode="before")
    @classmethod
    def _auto(cls, data: Any) -> Any:
        """Resolve ``auto`` choices from the space, so every later reader sees a concrete one."""
        if not isinstance(data, dict):
            return data
        space = data.get("space") if isinstance(data.get("space"), dict) else {}
        kind = space.get("kind", "elastic_cnn")
        if not isinstance(kind, str):
            return data  # not a kind at all: the field's own validation names it
        meta = {k: "meta" for k in META_KINDS}
        for section, key, by_kind in (("evaluation", "kind", {"elastic_cnn": "inherited", "wann": "wann", **meta}),
                                      ("search", "strategy", {"elastic_cnn": "msunas", "nb201": "aging",
                                                              "dag_cell": "aging", "rnn_cell": "aging",
                                                              "codeepneat": "codeepneat", "wann": "wann",
                                                              "activation": "aging", "augmentation": "aging",
                                                              "loss": "cma"})):
            sec = data.get(section)
            if sec is None or isinstance(sec, dict):
                sec = dict(sec or {})
                if sec.get(key, "auto") == "auto":
                    sec[key] = by_kind.get(kind, "train")
                data = {**data, section: sec}
        if kind == "wann":  # a weight-agnostic search has its own objectives (no accuracy for control)
            sec = data.get("search")
            if isinstance(sec, dict) and "objectives" not in sec:
                data = {**data, "search": {**sec, "objectives": ["mean_score", "connections"]}}
        if kind in META_KINDS:  # a component has no size or latency: accuracy alone
            sec = data.get("search")
            if isinstance(sec, dict) and "objectives" not in sec:
                data = {**data, "search": {**sec, "objectives": ["val_accuracy"]}}
        return data

    def search_seed(self) -> int:
        """The seed of the search strategy's own random choices: ``search.seed``, else the run's seed."""
        return self.seed if self.search.seed is None else self.search.seed

    def run_identity(self) -> dict[str, Any]:
        """What every run's ``metrics.json`` records about how it searched."""
        return {"objectives": self.search.objectives, "strategy": self.search.strategy, "seed": self.seed,
                "search_seed": self.search_seed()}

    @model_validator(mode="after")
    def _cross(self) -> "Config":
        wann = self.space.kind == "wann"
        if wann or self.evaluation.kind == "wann" or self.search.strategy == "wann":
            return self._check_wann()
        if self.space.kind in META_KINDS or self.evaluation.kind == "meta" or self.search.strategy == "cma":
            return self._check_meta()
        accs = [o for o in self.search.objectives if o in ACCURACY_OBJECTIVES]
        if len(accs) != 1:
            raise ValueError(f"search.objectives must include one validation score, val_accuracy or "
                             f"val_soft_accuracy; got {self.search.objectives}")
        allowed = list(OBJECTIVES)
        if self.evaluation.kind == "table":
            if not self.evaluation.table.path:
                raise ValueError("evaluation.table.path is required when evaluation.kind is 'table'")
            if self.space.kind != "nb201":
                raise ValueError("evaluation.kind 'table' needs space.kind 'nb201' (tables list NAS-Bench-201 cells)")
            allowed = ["val_accuracy", *self.evaluation.table.cost_columns]
        elif self.space.kind != "elastic_cnn" and self.evaluation.kind == "inherited":
            raise ValueError(f"space.kind '{self.space.kind}' has no supernet: use evaluation.kind 'train' or 'table'")
        if self.space.crossover == "sep" and self.space.kind not in ("nb201", *CELL_KINDS):
            raise ValueError("space.crossover 'sep' applies to nb201, dag_cell and rnn_cell cells (CoDeepNEAT: "
                             "search.codeepneat.crossover)")
        if self.space.kind in CELL_KINDS and self.search.strategy not in DAG_STRATEGIES:
            raise ValueError(f"search.strategy '{self.search.strategy}' proposes raw vectors, and most are not valid "
                             f"cells; on space.kind '{self.space.kind}' use one of {list(DAG_STRATEGIES)}")
        if self.search.strategy == "reinforce" and self.space.kind not in ("elastic_cnn", "nb201", *CELL_KINDS):
            raise ValueError("search.strategy 'reinforce' samples fixed-length genomes: use it on space.kind "
                             "elastic_cnn, nb201, dag_cell or rnn_cell")
        if self.space.multitask != "none" and self.space.kind != "codeepneat":
            raise ValueError(f"space.multitask '{self.space.multitask}' evolves CoDeepNEAT networks: it needs "
                             "space.kind 'codeepneat'")
        if self.data.kind in ("omniglot", "multi") and self.space.multitask == "none":
            raise ValueError(f"data.kind '{self.data.kind}' gives one task per alphabet or dataset: search multi-task "
                             "networks with space.kind 'codeepneat' and space.multitask 'heads' or 'routing'")
        graph = self.space.kind == "codeepneat"
        if graph and self.search.strategy not in GRAPH_STRATEGIES:
            raise ValueError(f"search.strategy '{self.search.strategy}' needs a fixed-length genome; on space.kind "
                             f"'codeepneat' use one of {list(GRAPH_STRATEGIES)}")
        if self.search.strategy == "codeepneat" and not graph:
            raise ValueError("search.strategy 'codeepneat' evolves blueprints and modules: it needs space.kind "
                             "'codeepneat'")
        bad = [o for o in self.search.objectives if o not in allowed]
        if bad:
            raise ValueError(f"unknown objective(s) {bad} in search.objectives; choose from {allowed}")
        missing = [c for c, o in CONSTRAINT_OBJECTIVE.items() if c in self.search.constraints and o not in allowed]
        if missing:
            raise ValueError(f"search.constraints {missing} name metrics this evaluator does not produce")
        return self


    def _check_meta(self) -> "Config":
        kind, strategy = self.space.kind, self.search.strategy
        allowed = {"activation": ("aging", "random"), "augmentation": ("aging", "random"), "loss": ("cma", "random")}
        if kind not in META_KINDS or self.evaluation.kind != "meta" or strategy not in allowed[kind]:
            hint = "; ".join(f"space.kind '{k}': search.strategy {' or '.join(repr(s) for s in v)}"
                             for k, v in allowed.items())
            raise ValueError("a meta-learning search needs space.kind activation, loss or augmentation with "
                             f"evaluation.kind 'meta' ({hint}); got space.kind '{kind}', evaluation.kind "
                             f"'{self.evaluation.kind}', search.strategy '{strategy}'")
        if self.search.objectives != ["val_accuracy"]:
            raise ValueError(f"a meta-learning search optimises validation accuracy alone: search.objectives must be "
                             f"[val_accuracy], got {self.search.objectives}")
        if self.search.constraints:
            raise ValueError("search.constraints are not read by a meta-learning search: leave them empty")
        if self.search.mode == "async" and strategy == "cma":
            raise ValueError("search.strategy 'cma' updates its distribution once per generation: use search.mode "
                             "'generational'")
        if self.data.kind in ("omniglot", "multi"):
            raise ValueError(f"data.kind '{self.data.kind}' is multi-task: a meta-learning search trains one "
                             "classifier (use omniglot_pooled, digits, npz or folder)")
        if kind == "activation" and self.space.activation != "default":
            raise ValueError("space.activation is what an activation search finds: leave it 'default' there")
        if kind == "loss" and self.evaluation.loss != "cross_entropy":
            raise ValueError("evaluation.loss is what a loss search finds: leave it 'cross_entropy' there")
        if kind == "augmentation" and self.evaluation.augmentation != "none":
            raise ValueError("evaluation.augmentation is what an augmentation search finds: leave it 'none' there")
        return self

    def _check_wann(self) -> "Config":
        if not (self.space.kind == self.evaluation.kind == "wann" and self.search.strategy in ("wann", "random")):
            raise ValueError("weight-agnostic search needs space.kind 'wann' with evaluation.kind 'wann' and "
                             "search.strategy 'wann' (or 'random'); got space.kind "
                             f"'{self.space.kind}', evaluation.kind '{self.evaluation.kind}', search.strategy "
                             f"'{self.search.strategy}'")
        bad = [o for o in self.search.objectives if o not in WANN_OBJECTIVES]
        if bad:
            raise ValueError(f"unknown objective(s) {bad} in search.objectives on space.kind 'wann'; choose from "
                             f"{list(WANN_OBJECTIVES)}")
        if not any(o in WANN_SCORES for o in self.search.objectives):
            raise ValueError("search.objectives must include mean_score (the mean performance over the shared "
                             "weights) or ensemble_score (classify: the weights' ensemble) on space.kind 'wann'")
        if "ensemble_score" in self.search.objectives and self.evaluation.wann.task != "classify":
            raise ValueError("search.objectives: ensemble_score scores the shared weights' ensemble of a classifier; "
                             f"evaluation.wann.task {self.evaluation.wann.task!r} is a control task (use mean_score)")
        if self.search.constraints:
            raise ValueError("search.constraints are not read by the weight-agnostic search: leave them empty")
        if self.data.kind in ("omniglot", "multi"):
            raise ValueError(f"data.kind '{self.data.kind}' is multi-task: a WANN classifies one task (use digits, "
                             "npz, folder or omniglot_pooled)")
        return self


def _check_component(component: str, spec: str) -> str:
    """A component param (``space.activation``, ``evaluation.loss``, ``evaluation.augmentation``):
    names and expressions are checked now; a file is checked when a stage reads it (a search
    earlier in the same workflow may still have to write it)."""
    from nas.meta.components import ComponentError, _is_file_spec, resolve

    if _is_file_spec(spec):
        if not spec.endswith(".json"):
            raise ValueError(f"{spec!r}: a {component} file is the .json a {component} search writes")
        return spec
    try:
        resolve(component, spec)
    except ComponentError as exc:
        raise ValueError(str(exc)) from None
    return spec


def _short(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a fuzzed or mistaken value can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def _format_error(err: ValidationError, raw: dict[str, Any]) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<top level>"
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}' (value {_short(value)}); check the spelling against the params reference "
                         "(docs/reference/params.md, or `evonas config` for every key)")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            shown = "" if isinstance(value, dict) else f" (got {_short(value)})"
            lines.append(f"bad value for '{loc}'{shown}: {msg}")
    return "invalid params:\n  " + "\n  ".join(lines)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested dict copy."""
    out = copy.deepcopy(raw)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (for example search.generations=3)")
        key, _, text = item.partition("=")
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {key}: value {text!r} is not valid YAML ({exc})") from None
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p, {}), dict):
                raise ConfigError(f"override {key}: '{p}' is not a section")
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load_raw(path: str | Path) -> dict[str, Any]:
    """The mapping a params file holds. Raises :class:`ConfigError` when the file is missing, not
    a file, not UTF-8 text, not YAML, empty (or only comments) or not a mapping."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"params file {str(path)!r} is a directory, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"params file {str(path)!r} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"params file {str(path)!r} is not UTF-8 text (byte {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 1]!r}); is it the right file?") from None
    except OSError as exc:
        raise ConfigError(f"params file {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {str(path)!r} is not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"params file {str(path)!r} is nested too deeply to be a params file") from None
    if raw is None:
        raise ConfigError(f"params file {str(path)!r} is empty (no settings, or only comments): is it the right "
                          "file? A params file needs at least one key, e.g. `seed: 0`; every key it leaves out "
                          "takes its default")
    if not isinstance(raw, dict):
        raise ConfigError(f"params file {str(path)!r} must hold a mapping of sections, got {type(raw).__name__}")
    return raw


def from_dict(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(err, raw)) from None


def load_config(path: str | Path = "params.yaml", overrides: list[str] | None = None) -> Config:
    """Load, override and validate. Raises :class:`ConfigError` with a readable message."""
    return from_dict(apply_overrides(load_raw(path), overrides))


def complete_params(raw: dict[str, Any]) -> dict[str, Any]:
    """The params ``raw`` (a params file's mapping, overrides applied) with every section and
    key the schema has, defaults filled in, in the schema's order. What the user wrote is kept
    as written (``strategy: auto`` stays ``auto``). Raises :class:`ConfigError` like
    :func:`from_dict` on invalid params."""
    full = from_dict(raw).model_dump(mode="json", by_alias=True)

    def merge(base: dict, given: dict) -> dict:
        return {k: merge(v, given[k]) if isinstance(v, dict) and isinstance(given.get(k), dict) and v
                else given.get(k, v) for k, v in base.items()}

    return merge(full, raw)


def complete_yaml(raw: dict[str, Any], source: str | None = None) -> str:
    """:func:`complete_params` as YAML: a params file that loads to the same configuration.
    DVC reads ``params.yaml`` only and needs every group a stage depends on, so this is how an
    example such as ``examples/omniglot_multitask.yaml`` becomes the ``params.yaml`` that
    ``dvc repro`` runs (``evonas config``)."""
    head = ("# Complete evonas configuration" + (f", generated from {source}" if source else "")
            + " by `evonas config`.\n# Every key is listed with its value; docs/reference/params.md says what each means.\n")
    return head + yaml.dump(complete_params(raw), Dumper=_ParamsDumper, sort_keys=False, width=100)


class _ParamsDumper(yaml.SafeDumper):
    """Sections as blocks, lists of plain values on one line (as params.yaml writes them)."""


_ParamsDumper.add_representer(list, lambda d, v: d.represent_sequence(
    "tag:yaml.org,2002:seq", v, flow_style=all(not isinstance(x, (dict, list)) for x in v)))

"""Found components (activation, loss, augmentation policy) as files and as training pieces.

A meta-learning search writes what it found as JSON (``artifacts/.../select/<component>.json``):

    {"component": "activation", "value": {"tree": {...}}, "text": "x * sigmoid(x)", ...}
    {"component": "loss", "value": {"theta": [8 numbers]}, ...}
    {"component": "augmentation", "value": {"policy": [[op, p, m], ...]}, ...}

Every training in the project reads its pieces from three params: ``space.activation``
(``default``, a name in :data:`nas.meta.expr.BUILTIN`, an expression such as ``x * sigmoid(x)``,
or such a file), ``evaluation.loss`` (``cross_entropy`` or a loss file) and
``evaluation.augmentation`` (``none``, ``hand_made`` or a policy file). :func:`resolve` turns a
param into the component's value once, in the process that reads the params, so Dask workers
receive values, not paths."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

COMPONENTS = ("activation", "loss", "augmentation")
DEFAULTS = {"activation": "default", "loss": "cross_entropy", "augmentation": "none"}


class ComponentError(ValueError):
    """A component param that names nothing usable."""


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".json") or "/" in spec


def load_file(path: str | Path, component: str) -> dict:
    """The value stored in a component file written by a meta-learning search."""
    p = Path(path)
    if not p.is_file():
        raise ComponentError(f"{p}: no such {component} file (run the {component} search first, e.g. "
                             f"`evonas run --params examples/meta_{component}.yaml`)")
    try:
        doc = json.loads(p.read_text())
    except ValueError as exc:
        raise ComponentError(f"{p}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("component") != component or not isinstance(doc.get("value"), dict):
        raise ComponentError(f"{p}: not a {component} file (expected {{\"component\": \"{component}\", \"value\": ...}}, "
                             f"got component {doc.get('component') if isinstance(doc, dict) else None!r})")
    return doc["value"]


def check_value(component: str, value: dict) -> dict:
    """``value`` validated for ``component``; raises :class:`ComponentError`."""
    try:
        if component == "activation":
            from nas.meta.expr import degenerate, validate

            validate(value.get("tree"))
            why = degenerate(value["tree"])
            if why:
                raise ComponentError(f"the activation is unusable: {why}")
        elif component == "loss":
            from nas.meta.taylor import check_theta

            check_theta(value.get("theta", []))
        elif component == "augmentation":
            from nas.meta.augment import check_value as check_augmentation

            value = check_augmentation(value)
        else:
            raise ComponentError(f"unknown component {component!r}; known: {', '.join(COMPONENTS)}")
    except ComponentError:
        raise
    except ValueError as exc:
        raise ComponentError(str(exc)) from None
    return value


def resolve(component: str, spec: str) -> dict | None:
    """The value a param names (None: the built-in default, e.g. cross-entropy)."""
    if spec == DEFAULTS[component]:
        return None
    if _is_file_spec(spec):
        return check_value(component, load_file(spec, component))
    if component == "activation":
        from nas.meta.expr import BUILTIN, TreeError, parse

        try:
            return check_value(component, {"tree": parse(BUILTIN.get(spec, spec))})
        except TreeError as exc:
            raise ComponentError(f"space.activation {spec!r}: {exc}") from None
    if component == "augmentation" and spec == "hand_made":
        from nas.meta.augment import HAND_MADE

        return {"policy": HAND_MADE}
    raise ComponentError(f"evaluation.{component} {spec!r}: expected {DEFAULTS[component]!r}"
                         f"{', hand_made' if component == 'augmentation' else ''} or the {component}.json "
                         "written by a meta-learning search")


def describe(component: str, value: dict | None) -> str:
    if value is None:
        return DEFAULTS[component]
    if component == "activation":
        from nas.meta.expr import to_text

        return to_text(value["tree"])
    if component == "loss":
        return "TaylorGLO [" + ", ".join(f"{v:.3g}" for v in value["theta"]) + "]"
    from nas.meta.augment import value_text

    return value_text(value)


@dataclass(frozen=True)
class Recipe:
    """How a training loop computes its loss and augments its batches. ``loss`` and ``augment``
    are the component values (None: cross-entropy, no augmentation)."""

    loss: dict | None = None
    augment: dict | None = None

    def loss_fn(self) -> Callable:
        if self.loss is None:
            import torch.nn.functional as F

            return F.cross_entropy
        from nas.meta.taylor import TaylorGLOLoss

        return TaylorGLOLoss(self.loss["theta"])

    def augment_fn(self) -> Callable | None:
        """``augment(batch, generator, progress)``, or None when batches stay as they are."""
        if self.augment is None:
            return None
        from nas.meta.augment import from_value

        return from_value(self.augment)

    @property
    def plain(self) -> bool:
        return self.loss is None and self.augment_fn() is None


def recipe(cfg: Any) -> Recipe:
    """The training recipe of a config (``evaluation.loss``, ``evaluation.augmentation``)."""
    ev = cfg.evaluation
    return Recipe(resolve("loss", ev.loss), resolve("augmentation", ev.augmentation))


def fixed_activation(cfg: Any) -> dict | None:
    """The tree of ``evaluation.meta.activation``: the fixed network's activation in loss and
    augmentation searches (None: ReLU)."""
    v = resolve("activation", cfg.evaluation.meta.activation)
    return None if v is None else v["tree"]


def activation_tree(cfg: Any) -> dict | None:
    """The tree of ``space.activation`` (None: each space's own activation)."""
    v = resolve("activation", cfg.space.activation)
    return None if v is None else v["tree"]


def file_hashes(cfg: Any) -> dict[str, str]:
    """sha256 of each component file the params name (a search checkpoint is stale when one changes)."""
    import hashlib

    out = {}
    for comp, spec in (("activation", cfg.space.activation), ("loss", cfg.evaluation.loss),
                       ("augmentation", cfg.evaluation.augmentation)):
        if _is_file_spec(spec) and Path(spec).is_file():
            out[comp] = hashlib.sha256(Path(spec).read_bytes()).hexdigest()[:16]
    return out


def inline_activation(space_cfg: Any) -> Any:
    """``space.*`` with an activation file replaced by its expression, so that Dask workers on
    other machines build the same networks without reading the file."""
    spec = space_cfg.activation
    if not _is_file_spec(spec):
        return space_cfg
    from nas.meta.expr import to_text

    return space_cfg.model_copy(update={"activation": to_text(resolve("activation", spec)["tree"])})


def recipe_json(cfg: Any) -> str:
    """The training recipe of a config as canonical JSON (what evaluators carry to workers)."""
    from nas.genome import canonical_json

    r = recipe(cfg)
    return canonical_json({"loss": r.loss, "augment": r.augment})


def recipe_from_json(text: str) -> Recipe:
    return Recipe(**json.loads(text)) if text else Recipe()

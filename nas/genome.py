"""Genomes and evaluation results: plain frozen values, no torch, no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def canonical_json(obj: Any) -> str:
    """The one text form of a JSON value (sorted keys, no spaces): equal values, equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, order=True)
class Genome:
    """An immutable, hashable architecture encoding.

    Vector spaces (elastic CNN, NAS-Bench-201) use ``values``, a fixed-length integer vector.
    Graph spaces (CoDeepNEAT) leave ``values`` empty and describe the whole architecture in
    ``spec``, the canonical JSON of a plain dict (see :func:`canonical_json`)."""

    values: tuple[int, ...] = ()
    space: str = "elastic_cnn"
    spec: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(int(v) for v in self.values))

    def key(self) -> str:
        """Stable identity across processes and runs (not Python's salted ``hash``)."""
        body = self.spec if self.spec else ",".join(map(str, self.values))
        return hashlib.sha1(f"{self.space}:{body}".encode()).hexdigest()[:12]

    def payload(self) -> Any:
        """The JSON value that describes this genome: the integer list, or the spec dict."""
        return json.loads(self.spec) if self.spec else list(self.values)

    def to_json(self) -> str:
        return self.spec if self.spec else json.dumps(list(self.values))

    @classmethod
    def from_payload(cls, obj: Any, space: str = "elastic_cnn") -> "Genome":
        if isinstance(obj, dict):
            return cls((), space, canonical_json(obj))
        return cls(tuple(obj), space)

    @classmethod
    def from_json(cls, text: str, space: str = "elastic_cnn") -> "Genome":
        return cls.from_payload(json.loads(text), space)


def candidate_seed(base_seed: int, genome: Genome) -> int:
    """Per-candidate seed from the base seed and the genome, so results never depend on
    which worker ran a candidate or in what order (neat-python's rule)."""
    digest = hashlib.sha256(f"{base_seed}:{genome.key()}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class EvaluationResult:
    genome: Genome
    metrics: dict[str, float]
    status: str = "ok"  # ok | failed
    error: str | None = None
    seed: int = 0
    worker: str = ""
    eval_seconds: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def candidate_id(self) -> str:
        return self.genome.key()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

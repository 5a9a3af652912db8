"""Genomes and evaluation results: plain frozen values, no torch, no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Genome:
    """An immutable, hashable architecture encoding: a fixed-length integer vector."""

    values: tuple[int, ...]
    space: str = "elastic_cnn"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(int(v) for v in self.values))

    def key(self) -> str:
        """Stable identity across processes and runs (not Python's salted ``hash``)."""
        return hashlib.sha1(f"{self.space}:{','.join(map(str, self.values))}".encode()).hexdigest()[:12]

    def to_json(self) -> str:
        return json.dumps(list(self.values))

    @classmethod
    def from_json(cls, text: str, space: str = "elastic_cnn") -> "Genome":
        return cls(tuple(json.loads(text)), space)


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

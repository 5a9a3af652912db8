"""Per-layer cost table: exact parameter count and FLOPs, and measured latency, of every layer a
network of a layer-wise space can contain, measured once per device and stored with the
supernet (the latency lookup table of Once-for-All and MSuNAS).

A network's costs are sums over its layers: ``params`` and ``flops`` exactly (the table holds
``count_params`` and ``count_flops`` of each layer, and a network is its layers in sequence),
``latency_ms`` as the sum of each layer's median batch-1 latency. Every candidate's latency
then comes from the same measurements, so a search compares architectures, not timing noise
of the moment each candidate happened to be measured; ``reports/surrogate.json`` records how
well the table ranks directly measured latencies.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from nas.io import atomic_write_json
from nas.objectives import count_flops, count_params, measure_latency_ms
from nas.training import torch_threads

TABLE_FILE = "cost_table.json"
COSTS = ("params", "flops", "latency_ms")


class CostTableError(ValueError):
    """A cost table that is missing, malformed, or lacks a layer a network uses."""


@dataclass(frozen=True)
class Layer:
    """One layer a network may contain: its table key, a builder of the stand-alone module, and
    the shape (C, H, W) of its input."""

    key: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]


def device_description(threads: int) -> str:
    return (f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} logical CPUs), torch "
            f"{torch.__version__}, {threads} thread(s), batch 1").replace("  ", " ")


@dataclass
class CostTable:
    entries: dict[str, dict[str, float]]
    device: str = ""
    repeats: int = 0
    warmup: int = 0
    meta: dict = field(default_factory=dict)

    @classmethod
    def measure(cls, layers: Iterable[Layer], repeats: int, warmup: int, threads: int = 1,
                on_layer: Callable[[str], None] | None = None) -> "CostTable":
        """Build each distinct layer once and measure it on this machine's CPU with ``threads``
        torch threads (the Dask workers' setting)."""
        entries: dict[str, dict[str, float]] = {}
        with torch_threads(threads):
            for layer in layers:
                if layer.key in entries:
                    continue
                torch.manual_seed(0)
                m = layer.build().eval()
                entries[layer.key] = {"params": float(count_params(m)), "flops": float(count_flops(m, layer.input_shape)),
                                      "latency_ms": measure_latency_ms(m, layer.input_shape, repeats, warmup)}
                if on_layer:
                    on_layer(layer.key)
        return cls(entries, device_description(threads), repeats, warmup)

    def costs(self, keys: list[str]) -> dict[str, float]:
        """``params``, ``flops`` (exact) and ``latency_ms`` (lookup) of a network made of ``keys``."""
        missing = sorted({k for k in keys if k not in self.entries})
        if missing:
            raise CostTableError(f"the cost table has no entry for layer(s) {missing}: it was measured for another "
                                 "space or input shape (rerun `evonas stage pretrain`)")
        return {c: float(sum(self.entries[k][c] for k in keys)) for c in COSTS}

    def save(self, path: str | Path) -> None:
        atomic_write_json(Path(path), {"device": self.device, "repeats": self.repeats, "warmup": self.warmup,
                                       "meta": self.meta, "layers": self.entries})

    @classmethod
    def load(cls, path: str | Path) -> "CostTable":
        path = Path(path)
        if not path.is_file():
            raise CostTableError(f"{path}: no cost table (run `evonas stage pretrain`, which measures it)")
        try:
            raw = json.loads(path.read_text())
            entries = {str(k): {c: float(v[c]) for c in COSTS} for k, v in raw["layers"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CostTableError(f"{path}: not a cost table ({type(exc).__name__}: {exc})") from None
        return cls(entries, str(raw.get("device", "")), int(raw.get("repeats", 0)), int(raw.get("warmup", 0)),
                   dict(raw.get("meta", {})))

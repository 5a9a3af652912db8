"""Tabular evaluation: look a candidate up in a benchmark table (NAS-Bench-201 and same-shaped tables).

Columns are named by the user: the architecture column (arch strings), the *signal* column
(what the strategy sees, e.g. ``val_acc_12ep``), the *report* column (what is reported for
the incumbent, e.g. ``test_acc_200ep``) and any number of *cost* columns (e.g.
``latency_raspi4_ms``). ``params`` and ``flops`` may also be named as costs: they are then
computed from the torch builder of the space. An optional simulated evaluation time (a
constant, or proportional to a column) lets asynchronous scheduling be studied on a table.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.evaluators.base import sleep
from nas.genome import Genome

BUILDER_COSTS = ("params", "flops")


class TableError(ValueError):
    """A benchmark table that is missing, malformed, or lacks a named column."""


@dataclass(frozen=True)
class Table:
    genomes: list[Genome]
    index: dict[Genome, int]
    signal: np.ndarray
    report: np.ndarray
    costs: dict[str, np.ndarray]
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.genomes)


def load_table(path: str | Path, arch_column: str, signal_column: str, report_column: str,
               cost_columns: tuple[str, ...] = (), extra_columns: tuple[str, ...] = ()) -> Table:
    import pandas as pd

    from nas.spaces.nb201 import parse_arch

    path = Path(path)
    if not path.is_file():
        raise TableError(f"benchmark table {str(path)!r} does not exist")
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise TableError(f"{path}: not a readable CSV ({exc})") from None
    table_costs = tuple(c for c in cost_columns if c not in BUILDER_COSTS)
    wanted = [arch_column, signal_column, report_column, *table_costs, *extra_columns]
    missing = [c for c in dict.fromkeys(wanted) if c not in df.columns]
    if missing:
        raise TableError(f"{path}: missing column(s) {missing}; the table has {list(df.columns)}")
    if df.empty:
        raise TableError(f"{path}: the table has no rows")
    for c in dict.fromkeys(wanted[1:]):
        numeric = pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype)
        if not numeric or df[c].isna().any() or not np.all(np.isfinite(df[c].to_numpy(float))):
            raise TableError(f"{path}: column {c!r} must be finite numbers with no empty cells")
    genomes = []
    for i, s in enumerate(df[arch_column]):
        try:
            genomes.append(parse_arch(str(s)))
        except ValueError as exc:
            raise TableError(f"{path}: row {i} column {arch_column!r}: {exc}") from None
    index = {g: i for i, g in enumerate(genomes)}
    if len(index) != len(genomes):
        raise TableError(f"{path}: column {arch_column!r} lists some architectures twice")
    costs = {c: df[c].to_numpy(float) for c in table_costs}
    return Table(genomes, index, df[signal_column].to_numpy(float), df[report_column].to_numpy(float), costs,
                 {c: df[c].to_numpy(float) for c in extra_columns})


@functools.lru_cache(maxsize=8)
def _cached_table(path: str, stamp: tuple | None, arch: str, signal: str, report: str, costs: tuple, extra: tuple) -> Table:
    return load_table(path, arch, signal, report, costs, extra)


@functools.lru_cache(maxsize=20000)
def _builder_costs(values: tuple[int, ...], channels: int, cells: int, num_classes: int,
                   in_channels: int, image_size: int) -> tuple[float, float]:
    from nas.objectives import count_flops, count_params
    from nas.spaces.nb201_build import build_nb201

    net = build_nb201(Genome(values, "nb201"), in_channels, num_classes, channels, cells)
    return float(count_params(net)), float(count_flops(net, (in_channels, image_size, image_size)))


@dataclass(frozen=True)
class TableEvaluator:
    """Evaluator over a table. Metrics: ``val_accuracy`` (the signal column), ``report_accuracy``
    (the report column), and one entry per cost column, named as the column."""

    path: str
    signal_column: str
    report_column: str
    cost_columns: tuple[str, ...] = ()
    arch_column: str = "arch_str"
    base_seed: int = 0
    sim_seconds: float = 0.0
    sim_seconds_column: str | None = None
    sim_scale: float = 1.0
    builder_channels: int = 16
    builder_cells: int = 5
    builder_num_classes: int = 10
    builder_in_channels: int = 3
    builder_image_size: int = 32

    def table(self) -> Table:
        extra = (self.sim_seconds_column,) if self.sim_seconds_column else ()
        p = Path(self.path)
        st = p.stat() if p.is_file() else None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino) if st else None  # a rewritten file is read again
        return _cached_table(str(p), stamp, self.arch_column, self.signal_column, self.report_column,
                             tuple(self.cost_columns), extra)

    def duration(self, genome: Genome) -> float:
        """Simulated evaluation seconds for ``genome`` (0 when not configured)."""
        t = self.table()
        d = self.sim_seconds
        if self.sim_seconds_column:
            d += self.sim_scale * float(t.columns[self.sim_seconds_column][t.index[genome]])
        return d

    def prepare(self) -> None:
        """Load (and cache) the table: shared by every candidate, so not part of one's time."""
        self.table()

    def metrics(self, genome: Genome, seed: int) -> dict[str, float]:
        t = self.table()
        if genome not in t.index:
            raise KeyError(f"architecture {genome.values} is not in the table {self.path}")
        i = t.index[genome]
        out = {"val_accuracy": float(t.signal[i]), "report_accuracy": float(t.report[i])}
        for c in self.cost_columns:
            if c in BUILDER_COSTS:
                params, flops = _builder_costs(genome.values, self.builder_channels, self.builder_cells,
                                               self.builder_num_classes, self.builder_in_channels,
                                               self.builder_image_size)
                out[c] = params if c == "params" else flops
            else:
                out[c] = float(t.costs[c][i])
        wait = self.duration(genome)
        if wait > 0:
            sleep(wait)  # stops at the candidate's deadline (evaluation.timeout_s)
        return out

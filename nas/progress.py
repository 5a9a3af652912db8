"""Terminal progress bars (rich) for long stages; quiet when output is not a terminal."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class Bar:
    def __init__(self, progress: Progress | None, task_id, total: int, label: str):
        self._p, self._id, self.total, self.label, self.done = progress, task_id, total, label, 0

    def advance(self, n: int = 1, info: str | None = None) -> None:
        self.done += n
        if self._p is not None:
            self._p.update(self._id, advance=n, info=info or "")
        elif info and (self.done == self.total or self.done % max(1, self.total // 5) == 0):
            print(f"{self.label}: {self.done}/{self.total} {info}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def bar(label: str, total: int) -> Iterator[Bar]:
    if not console.is_terminal:
        yield Bar(None, None, total, label)
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, transient=False) as p:
        tid = p.add_task(label, total=total, info="")
        yield Bar(p, tid, total, label)

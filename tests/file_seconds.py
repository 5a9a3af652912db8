"""Write tests/file_seconds.json from the output of a full run that printed every duration:
``.venv/bin/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder --durations=0 tests > LOG``,
then ``.venv/bin/python tests/file_seconds.py LOG [LOG ...]`` (several logs: the mean per file; a
file's seconds move with what runs beside it, by up to 2x between two runs).

conftest.py orders the test files by these seconds, heaviest first, and `make test` keeps that
order (``--no-loadscope-reorder``): with whole files sent to three processes, the long
end-to-end files then start first and the short ones fill in at the end (longest processing
time first), instead of pytest-xdist's default order (files with the most tests first), which
left the heaviest files for last and one process running long after the others."""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).with_name("file_seconds.json")


def file_seconds(log_text: str) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown of its tests) in one log."""
    seconds: dict[str, float] = defaultdict(float)
    for m in re.finditer(r"^\s*([\d.]+)s (?:setup|call|teardown)\s+tests/([^:\s]+\.py)::", log_text, re.M):
        seconds[m.group(2)] += float(m.group(1))
    return dict(seconds)


def mean_file_seconds(runs: list[dict[str, float]]) -> dict[str, float]:
    """The mean over the runs that measured each file, rounded, heaviest first."""
    names = {f for r in runs for f in r}
    mean = {f: sum(r[f] for r in runs if f in r) / sum(f in r for r in runs) for f in names}
    return dict(sorted(((f, round(s, 1)) for f, s in mean.items()), key=lambda kv: -kv[1]))


def main(argv: list[str]) -> int:
    if not argv or not all(Path(a).is_file() for a in argv):
        print("usage: python tests/file_seconds.py LOG [LOG ...] (outputs of `--durations=0` runs)", file=sys.stderr)
        return 2
    runs = [file_seconds(Path(a).read_text()) for a in argv]
    for a, r in zip(argv, runs):
        if not r:
            print(f"{a}: no per-test durations found (was the run made with --durations=0?)", file=sys.stderr)
            return 1
    seconds = mean_file_seconds(runs)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(seconds, indent=1) + "\n")
    tmp.replace(OUT)
    print(f"{OUT}: {len(seconds)} files, {sum(seconds.values()):.0f} s in all (mean of {len(runs)} run(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

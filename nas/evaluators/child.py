"""Run one evaluation in a child process (``python -m nas.evaluators.child``).

:func:`nas.evaluators.base.evaluate` uses this when a candidate has a timeout: the parent
writes the pickled ``(evaluator, genome, seed)`` (its own objects, never a user's file) to the
child's stdin; the child loads it (importing what the evaluator needs, and calling its optional
``prepare()``, which loads shared resources such as a table or a supernet), writes one line
``ready`` to stdout, evaluates, and writes ``{"metrics", "status", "error"}`` as JSON. The
candidate's time starts at ``ready``, so the child's start-up does not count against it. At the
deadline the parent kills the child's whole process group, so a timed-out candidate stops
computing at once and leaves no thread behind to race with the next candidate over torch's
global state.
"""

from __future__ import annotations

import json
import pickle
import sys


def main() -> int:
    evaluator, genome, seed = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by our parent
    from nas.evaluators.base import _metrics

    prepare = getattr(evaluator, "prepare", None)
    if callable(prepare):  # shared resources (a table, a supernet) load before the candidate's clock starts
        try:
            prepare()
        except Exception:  # noqa: BLE001 - the evaluation below reports it as the candidate sees it
            pass

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    metrics, status, error = _metrics(evaluator, genome, seed)
    sys.stdout.write(json.dumps({"metrics": {k: float(v) for k, v in metrics.items()}, "status": status,
                                 "error": error}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

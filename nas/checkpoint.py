"""Resumable searches: a checkpoint after every generation, a journal of every result.

Two files live in the search's **run folder**, ``<parent of search.out_dir>/search-runs/<hash>/``
(``artifacts/search-runs/<hash>/`` by default), where ``<hash>`` is the hash of the search's
fingerprint (:func:`fingerprint`: the params that shape the search, the data, the supernet, and
the search code). They live outside the stage's outputs, so ``dvc repro`` (which deletes a
stage's outputs before it runs it) never deletes them, and a changed param or code gets a
folder of its own instead of overwriting an earlier run:

- ``checkpoint.json``, rewritten atomically (temp file, then rename) each time a generation
  closes (every M results in asynchronous mode): a fingerprint of the params that shape the
  search, the strategy's random generator state, the runner's bookkeeping (generation log,
  counters), and how many lines of the two logs below it covers. It stays small however long
  the search runs.
- ``checkpoint-events.jsonl`` and ``checkpoint-results.jsonl``, appended (and flushed to disk)
  just before ``checkpoint.json`` is written: every call made to the strategy so far (``ask``
  with what it returned, ``tell`` with which results), one per line, and the told results.
  Appending keeps a save's cost to what is new since the last one; rewriting everything each
  time made long searches spend most of their time saving (a 230,000-network search rewrote
  up to 100 MB per save). Lines past the counts in ``checkpoint.json`` (a save cut short) are
  ignored, and dropped when the resumed search next saves.
- ``journal.jsonl``, appended (and flushed) as each result arrives, so results that came back
  after the last checkpoint are not lost when the process dies either; it is synced to disk with
  each checkpoint (a power cut can lose the results since the last one: they are evaluated
  again). A line cut short by a crash is ignored.

Resuming rebuilds the strategy by **replay**: a fresh strategy with the same seed is asked
and told exactly what the checkpoint records, and must propose exactly the recorded genomes
(strategies are deterministic given their seed and the calls made to them); its random
generator must then be in the recorded state. No strategy object is pickled, so a checkpoint
is plain JSON and never executes code when read. Candidates asked but not yet told when the
process died are taken from the journal when their result is there, and evaluated again
otherwise: a completed evaluation is never repeated. Population snapshots missing from
``<search.out_dir>/populations`` (deleted by ``dvc repro``) are written again from the checkpoint.

A run is never deleted: a checkpoint that cannot be read or replayed stops the search with
an error naming the choices (restore the code or params and ``--resume``, or ``--fresh``), and
``--fresh`` (or a finished run longer than the one now asked for) renames the old run folder
to ``<hash>.<UTC time>`` before starting afresh.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from nas.genome import EvaluationResult, Genome, canonical_json
from nas.io import atomic_write_text, atomic_write_with

CHECKPOINT = "checkpoint.json"
EVENTS = "checkpoint-events.jsonl"
RESULTS = "checkpoint-results.jsonl"
JOURNAL = "journal.jsonl"
VERSION = 2
CHOICES = ("Nothing was changed or deleted. Either restore the code (or params) that wrote this run and rerun "
           "with --resume, or start afresh with --fresh (`evonas stage search --fresh`; this run is then "
           "moved aside, not deleted).")
RUNS_DIR = "search-runs"
"""Run folders live in ``<parent of search.out_dir>/search-runs/``."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, from other params, or not reproducible."""


# ----------------------------------------------------------------------------- fingerprint


def fingerprint(cfg) -> dict[str, Any]:
    """The params a checkpoint must share with the run that resumes it.

    The search code counts too (``search_code_sha256``: the source of every module the search
    stage runs, :func:`nas.codebase.stage_files`), so a search never resumes into other code.
    Left out, because they do not change which candidates are proposed or what they score:
    ``search.generations`` and ``search.async.budget`` (raise them to extend a finished
    search), ``search.async.drain``, ``search.checkpoint_every``, output folders, where evaluation
    runs (workers, threads, chunk size, scheduler address, device), and what only the select stage reads
    (``evaluation.wann``'s tuning and test settings).
    """
    search = cfg.search.model_dump(by_alias=True)
    search.pop("generations")
    search.pop("checkpoint_every")
    search.pop("out_dir")
    search["async"].pop("budget")
    search["async"].pop("drain")
    if search["mode"] != "async":
        search.pop("async")
    ev = cfg.evaluation.model_dump()
    for k in ("workers", "threads_per_worker", "chunk_size", "scheduler_address", "device"):
        ev.pop(k)
    for k in ("tune_steps", "tune_lr", "reinforce_sigma", "reinforce_episodes", "test_rollouts"):
        ev["wann"].pop(k)
    from nas.codebase import stage_code_hash

    fp: dict[str, Any] = {"seed": cfg.seed, "space": cfg.space.model_dump(), "search": search, "evaluation": ev,
                          "search_code_sha256": stage_code_hash("search")}
    from nas.backends import backend

    fp.update(backend(cfg).fingerprint_inputs(cfg))  # the data, supernet or table the search reads
    return json.loads(json.dumps(fp))  # as it reads back from checkpoint.json (tuples become lists)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def fingerprint_diff(old: dict, new: dict) -> list[str]:
    a, b = _flat(old), _flat(new)
    return [f"{k}: checkpoint {a.get(k, '(unset)')!r}, params {b.get(k, '(unset)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "(unset)") != b.get(k, "(unset)")]


# ----------------------------------------------------------------------------- results as JSON


def _num(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if np.isfinite(v) else repr(v)  # JSON has no NaN/inf: keep them as text
    if isinstance(v, np.integer):
        return int(v)
    return v


def _unnum(v: Any) -> Any:
    return float(v) if v in ("nan", "inf", "-inf") else v


def result_to_dict(r: EvaluationResult) -> dict:
    return {"genome": r.genome.payload(), "space": r.genome.space,
            "metrics": {k: _num(v) for k, v in r.metrics.items()}, "status": r.status, "error": r.error,
            "seed": r.seed, "worker": r.worker, "eval_seconds": r.eval_seconds, "started_at": r.started_at,
            "finished_at": r.finished_at, "extra": {k: _num(v) for k, v in r.extra.items()}}


def result_from_dict(d: dict) -> EvaluationResult:
    return EvaluationResult(genome=Genome.from_payload(d["genome"], d["space"]),
                            metrics={k: _unnum(v) for k, v in d["metrics"].items()}, status=d["status"],
                            error=d["error"], seed=int(d["seed"]), worker=d["worker"],
                            eval_seconds=float(d["eval_seconds"]), started_at=float(d["started_at"]),
                            finished_at=float(d["finished_at"]),
                            extra={k: _unnum(v) for k, v in d.get("extra", {}).items()})


# ----------------------------------------------------------------------------- recording


def _rng_of(strategy) -> np.random.Generator | None:
    for name in ("rng", "_rng"):
        g = getattr(strategy, name, None)
        if isinstance(g, np.random.Generator):
            return g
    return None


def rng_state(strategy) -> dict | None:
    g = _rng_of(strategy)
    return json.loads(json.dumps(g.bit_generator.state, default=int)) if g is not None else None


def asked(g: Genome) -> str | list[int]:
    """How an ``ask`` event holds a genome: a graph genome's canonical spec **text** (held as
    parsed JSON, the genomes of a 230,000-network WANN search took gigabytes, and a resume held
    them twice), a vector genome's integer list. Written to the events log as the same JSON as
    the parsed spec, so the log's format does not depend on it."""
    return g.spec if g.spec else list(g.values)


def genome_asked(v: str | list[int], space: str) -> Genome:
    """The genome that :func:`asked` holds as ``v``."""
    return Genome((), space, v) if isinstance(v, str) else Genome(tuple(v), space)


def _event_line(ev: list) -> str:
    """One line of the events log: spec texts are embedded as the JSON objects they are."""
    if ev[0] != "ask":
        return json.dumps(ev, separators=(",", ":"))
    items = ",".join(x if isinstance(x, str) else json.dumps(x, separators=(",", ":")) for x in ev[2])
    return f'["ask",{int(ev[1])},[{items}],{json.dumps(ev[3])}]'


def _parse_event(line: bytes) -> Any:
    """A line of the events log, with the genomes of an ``ask`` as :func:`asked` holds them."""
    ev = json.loads(line)
    if isinstance(ev, list) and len(ev) >= 3 and ev[0] == "ask" and isinstance(ev[2], list):
        ev[2] = [canonical_json(x) if isinstance(x, dict) else x for x in ev[2]]
    return ev


def _parse_result(line: bytes) -> tuple[str, EvaluationResult]:
    k, d = json.loads(line)
    return str(k), result_from_dict(d)


class RecordingStrategy:
    """Wraps a strategy and records every ``ask`` (with what it returned, see :func:`asked`) and
    ``tell`` (which results, in order), so a checkpoint can replay them."""

    def __init__(self, strategy):
        self.inner = strategy
        self.name = getattr(strategy, "name", type(strategy).__name__)
        self.events: list[list] = []
        self.results: dict[str, EvaluationResult] = {}  # told, by candidate id

    def ask(self, n: int) -> list[Genome]:
        out = self.inner.ask(n)
        space = out[0].space if out else getattr(getattr(self.inner, "space", None), "name", "")
        self.events.append(["ask", n, [asked(g) for g in out], space])
        return out

    def tell(self, results: list[EvaluationResult]) -> None:
        self.inner.tell(results)
        for r in results:
            self.results.setdefault(r.candidate_id, r)
        self.events.append(["tell", [r.candidate_id for r in results]])

    def outstanding(self) -> list[Genome]:
        """Asked, not yet told (in flight when the checkpoint was written), in ask order."""
        told = set(self.results)
        out, seen = [], set()
        for ev in self.events:
            if ev[0] == "ask":
                for v in ev[2]:
                    g = genome_asked(v, ev[3])
                    if g.key() not in told and g not in seen:
                        seen.add(g)
                        out.append(g)
        return out

    def __getattr__(self, name):  # archive, space, ... of the wrapped strategy
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def replay(strategy, events: list[list], results: dict[str, EvaluationResult], expected_rng: dict | None
           ) -> RecordingStrategy:
    """Drive a fresh ``strategy`` through the recorded calls; return it wrapped for recording."""
    rec = RecordingStrategy(strategy)
    for i, ev in enumerate(events):
        if ev[0] == "ask":
            got = [asked(g) for g in rec.ask(int(ev[1]))]
            ev = ev[:3]
            if got != ev[2]:
                raise CheckpointError(
                    f"resume: call {i} (ask {ev[1]}) of the checkpointed search proposed different candidates "
                    f"when replayed ({len(got)} vs {len(ev[2])} genomes, first difference at "
                    f"{next((j for j, (a, b) in enumerate(zip(got, ev[2])) if a != b), min(len(got), len(ev[2])))}); "
                    "the strategy code or its settings changed since the checkpoint was written. " + CHOICES)
        else:
            missing = [k for k in ev[1] if k not in results]
            if missing:
                raise CheckpointError(f"resume: checkpoint is inconsistent: results {missing[:3]} are told but not stored")
            rec.tell([results[k] for k in ev[1]])
    state = rng_state(strategy)
    if expected_rng is not None and state != expected_rng:
        raise CheckpointError("resume: after replaying the checkpoint the strategy's random generator is not in the "
                              "recorded state; the strategy is not reproducible from this checkpoint. " + CHOICES)
    return rec


# ----------------------------------------------------------------------------- files


def _keep_first_lines(path: Path, n: int) -> None:
    """Cut a log to its first ``n`` lines (atomically, reading it line by line: it can hold
    gigabytes); left untouched when it holds exactly ``n`` complete lines."""
    count, complete = 0, True
    if path.exists():
        with open(path, "rb") as f:
            for line in f:
                count, complete = count + 1, line.endswith(b"\n")
    if count == n and complete:
        return

    def copy(tmp: str) -> None:
        with open(tmp, "wb") as out:
            if path.exists():
                with open(path, "rb") as f:
                    out.writelines(itertools.islice(f, n))

    atomic_write_with(path, copy)


def _append_lines(path: Path, lines) -> None:
    """Append one line per item and flush it to disk (nothing is written when there is none)."""
    data = "".join(f"{line}\n" for line in lines)
    with open(path, "a", encoding="utf-8") as f:
        if data:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def fingerprint_hash(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def runs_root(cfg) -> Path:
    """Where the search's run folders live: beside ``search.out_dir``, never inside it."""
    return Path(cfg.search.out_dir).parent / RUNS_DIR


def search_checkpointer(cfg) -> "Checkpointer":
    """The checkpointer of the search ``cfg`` describes, in its own run folder."""
    fp = fingerprint(cfg)
    return Checkpointer(runs_root(cfg) / fingerprint_hash(fp), fp)


class Checkpointer:
    """Writes ``checkpoint.json``, its two logs and ``journal.jsonl`` in ``out_dir`` (a run folder)."""

    def __init__(self, out_dir: str | Path, fp: dict):
        self.dir = Path(out_dir)
        self.fp = fp
        self.fp_hash = fingerprint_hash(fp)
        self._journal = None
        self._doc: dict | None = None  # the loaded checkpoint, until this object writes one
        self._logged: tuple[int, int] | None = None  # (events, results) lines the last checkpoint covers
        self._trim = False  # the logs hold lines past those: drop them before appending

    @property
    def path(self) -> Path:
        return self.dir / CHECKPOINT

    @property
    def events_path(self) -> Path:
        return self.dir / EVENTS

    @property
    def results_path(self) -> Path:
        return self.dir / RESULTS

    @property
    def journal_path(self) -> Path:
        return self.dir / JOURNAL

    # writing
    def start_fresh(self) -> Path | None:
        """Make room for a new run: an existing checkpoint or journal is moved aside with its
        folder (:meth:`move_aside`), never deleted. Returns where it went (None: nothing there)."""
        self.close()
        self._doc = None
        moved = self.move_aside() if any(p.exists() for p in (self.path, self.journal_path, self.events_path,
                                                               self.results_path)) else None
        self.dir.mkdir(parents=True, exist_ok=True)
        self._logged, self._trim = (0, 0), False
        return moved

    def move_aside(self, populations: Path | None = None) -> Path | None:
        """Rename the run folder to ``<name>.<UTC time>`` (and move ``populations``, the run's
        snapshots, into it), so a new run can start without losing this one."""
        if not self.dir.exists():
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = self.dir.with_name(f"{self.dir.name}.{stamp}")
        n = 1
        while dest.exists():
            n += 1
            dest = self.dir.with_name(f"{self.dir.name}.{stamp}-{n}")
        os.replace(self.dir, dest)
        if populations is not None and populations.is_dir() and any(populations.iterdir()):
            os.replace(populations, dest / "populations")
        self._doc, self._logged = None, None
        return dest

    def journal(self, r: EvaluationResult) -> None:
        if self._journal is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._journal = open(self.journal_path, "a", encoding="utf-8")
        self._journal.write(json.dumps(result_to_dict(r)) + "\n")
        self._journal.flush()  # in the system's hands: a crash of this process loses nothing

    def save(self, rec: RecordingStrategy, state: dict) -> None:
        """Append the strategy's calls and results since the last save to the logs, flush them
        to disk, then write ``checkpoint.json`` (atomically) to cover them."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._journal is not None:  # to disk with each save, not with each result (one fsync per result
            os.fsync(self._journal.fileno())  # cost a search of small networks a sixth of its time)
        if self._logged is None:  # no checkpoint of this run read or written by this object yet
            self._logged = self._committed() if self.path.exists() else (0, 0)
            self._trim = True
        n_ev, n_res = self._logged
        if len(rec.events) < n_ev or len(rec.results) < n_res:
            raise CheckpointError(f"{self.path}: covers {n_ev} calls and {n_res} results, more than this search has "
                                  f"made ({len(rec.events)}, {len(rec.results)}); it belongs to another run")
        if self._trim:  # lines of a save cut short, or logs without a checkpoint: keep what is covered
            for path, n in ((self.events_path, n_ev), (self.results_path, n_res)):
                _keep_first_lines(path, n)
            self._trim = False
        _append_lines(self.events_path, (_event_line(ev) for ev in rec.events[n_ev:]))
        _append_lines(self.results_path, (json.dumps([k, result_to_dict(r)], separators=(",", ":"))
                                          for k, r in itertools.islice(rec.results.items(), n_res, None)))
        doc = {"version": VERSION, "fingerprint": self.fp, "fingerprint_hash": self.fp_hash,
               "log": {"events": len(rec.events), "results": len(rec.results)},
               "rng_state": rng_state(rec.inner), **state}
        atomic_write_text(self.path, json.dumps(doc, separators=(",", ":")))
        self._logged = (len(rec.events), len(rec.results))
        self._doc = None

    def _committed(self) -> tuple[int, int]:
        doc = self._read_doc()
        return doc["log"]["events"], doc["log"]["results"]

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # reading
    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict:
        """The checkpoint document; :class:`CheckpointError` when unreadable or from other params."""
        if self._doc is not None:
            return self._doc
        doc = self._read_doc()
        if doc.get("fingerprint") != self.fp:
            diff = fingerprint_diff(doc.get("fingerprint") or {}, self.fp)
            raise CheckpointError(f"{self.path} was made with different search params, so it cannot be resumed: "
                                  + "; ".join(diff[:6]) + (f" (and {len(diff) - 6} more)" if len(diff) > 6 else "")
                                  + ". " + CHOICES)
        n_ev, n_res = doc["log"]["events"], doc["log"]["results"]
        events, extra_ev = self._read_log(self.events_path, n_ev, "calls to the strategy", _parse_event)
        if not all(isinstance(e, list) and e and e[0] in ("ask", "tell") for e in events):
            raise CheckpointError(f"{self.events_path}: a line is not a recorded ask or tell. " + CHOICES)
        rows, extra_res = self._read_log(self.results_path, n_res, "results", _parse_result)
        doc["results"] = dict(rows)
        doc["events"] = events
        self._logged, self._trim = (n_ev, n_res), extra_ev or extra_res
        self._doc = doc
        return doc

    def _read_doc(self) -> dict:
        """``checkpoint.json`` itself, checked for its format (not yet for its fingerprint)."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{self.path}: not a readable checkpoint ({type(exc).__name__}: {exc}); "
                                  "it may be truncated or corrupt. " + CHOICES) from None
        log = doc.get("log") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(log, dict) \
                or not all(isinstance(log.get(k), int) and not isinstance(log.get(k), bool) and log[k] >= 0
                           for k in ("events", "results")):
            raise CheckpointError(f"{self.path}: not an evonas checkpoint of version {VERSION}. " + CHOICES)
        return doc

    def _read_log(self, path: Path, n: int, what: str, parse) -> tuple[list, bool]:
        """The first ``n`` lines of a log, each parsed as it is read (a long search's logs hold
        gigabytes of text: neither the file nor its lines are held whole); and whether the log
        holds more (a save cut short)."""
        out: list = []
        more = False
        if not n and not path.exists():
            return out, more
        try:
            with open(path, "rb") as f:
                for line in f:
                    if len(out) == n:
                        more = True
                        break
                    if not line.endswith(b"\n"):
                        break
                    try:
                        out.append(parse(line))
                    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                        raise CheckpointError(f"{path}: a line is not readable ({exc}); it is truncated or "
                                              "corrupt. " + CHOICES) from None
                    except (KeyError, TypeError, ValueError) as exc:
                        raise CheckpointError(f"{path}: a stored line of the {what} is malformed ({exc!r}). "
                                              + CHOICES) from None
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot be read ({exc}); the checkpoint records {n} {what} there. "
                                  + CHOICES) from None
        if len(out) < n:
            raise CheckpointError(f"{path}: holds {len(out)} complete lines of the {n} {what} {self.path.name} "
                                  "records; it is truncated or corrupt. " + CHOICES)
        return out, more

    def journaled(self) -> dict[str, EvaluationResult]:
        """Results journaled so far, by candidate id (a torn last line is skipped)."""
        out: dict[str, EvaluationResult] = {}
        if not self.journal_path.is_file():
            return out
        with open(self.journal_path, encoding="utf-8", errors="replace") as f:  # line by line: it grows large
            for line in f:
                try:
                    r = result_from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue
                out.setdefault(r.candidate_id, r)
        return out


def resume_decision(cfg, resume: bool | None, ck: Checkpointer | None = None) -> tuple[bool, str]:
    """Whether ``run_search`` resumes, and why. ``resume``: True (resume; a missing checkpoint
    is an error naming how the newest other run differs), False (start afresh), None (resume
    when this search's run folder holds a checkpoint, else start afresh). A checkpoint that
    is there but cannot be read raises :class:`CheckpointError` in every mode: the run is left
    in place and the message names ``--fresh``. ``ck``: the search's checkpointer, if any."""
    ck = ck or search_checkpointer(cfg)
    if resume is False:
        return False, "starting afresh (--fresh: an earlier run of these params is moved aside)"
    if not ck.exists():
        if resume:
            raise CheckpointError(_no_checkpoint_message(ck))
        return False, f"no checkpoint of these params and code in {ck.dir.parent}: starting afresh"
    doc = ck.load()
    return True, f"resuming from {ck.path} at generation {doc['next_generation']} " \
                 f"({len(doc['results'])} evaluations done)"


def past_budget(cfg, doc: dict) -> str | None:
    """Why a checkpoint holds more than the search now asks for (None if it does not): it
    was made with more ``search.generations`` or a larger ``search.async.budget``, which the
    fingerprint leaves out so that a finished search can be extended."""
    s = cfg.search
    if s.mode == "async":
        done = len(doc["results"])
        return f"{done} evaluations, more than search.async.budget {s.async_budget}" if done > s.async_budget else None
    gens = int(doc["next_generation"])
    return f"{gens} generations, more than the {s.generations + 1} asked" if gens > s.generations + 1 else None


def _no_checkpoint_message(ck: Checkpointer) -> str:
    msg = f"--resume: no checkpoint made with these params and this search code in {ck.dir.parent}"
    others = sorted((p for p in ck.dir.parent.glob(f"*/{CHECKPOINT}") if p.parent != ck.dir),
                    key=lambda p: p.stat().st_mtime)
    if not others:
        return msg + " (no search ran here yet). Start one without --resume."
    try:
        old = json.loads(others[-1].read_text(encoding="utf-8")).get("fingerprint") or {}
    except (OSError, ValueError):
        old = {}
    diff = fingerprint_diff(old, ck.fp)
    return (msg + f". The newest run there ({others[-1].parent}) differs in: " + "; ".join(diff[:6])
            + (f" (and {len(diff) - 6} more)" if len(diff) > 6 else "")
            + ". Restore those params (or that code), or start afresh without --resume.")

"""Property-based fuzzing (Hypothesis) of every input a user hands evonas.

The property, per input class: the checks that run before any work (``load_config`` for params
and ``--set``, ``nas.preflight.check`` for data, tables and checkpoints) either accept the input,
and then the stage that reads it succeeds on it, or reject it with the error class the command
line turns into exit code 2 and a one-line message naming the input (``ConfigError``,
``PreflightError``, ``DataError``, ``TableError``, ``CheckpointError``). Any other exception is a
bug: it would reach the user as a traceback or an exit in the middle of a run. How the command
line words and times those errors is checked on real processes in ``test_bad_input.py``.

A fixed seed (``derandomize``) and bounded example counts keep this in ``make test``;
``benchmarks/faults.py --fuzz N`` runs the same properties with N examples each.
"""

from __future__ import annotations

import io
import json
import os
import string
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.checkpoint import CheckpointError
from nas.config import ConfigError, apply_overrides, from_dict, load_config
from nas.data import DataError
from nas.evaluators.table import TableError
from nas.preflight import PreflightError, check

ROOT = Path(__file__).resolve().parents[1]
CLEAN = (ConfigError, PreflightError, DataError, TableError, CheckpointError)
EXAMPLES = int(os.environ.get("EVONAS_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
TRIED = {"accepted": 0, "rejected": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    """``EVONAS_FUZZ_REPORT`` (set by ``benchmarks/faults.py --fuzz``) names a file that receives
    the numbers of inputs accepted and rejected once the module's properties have run."""
    yield
    if os.environ.get("EVONAS_FUZZ_REPORT"):
        Path(os.environ["EVONAS_FUZZ_REPORT"]).write_text(json.dumps({**TRIED, "examples_per_property": EXAMPLES}))


def _clean(fn) -> bool:
    """Run ``fn``; True when it accepted, False when it rejected cleanly; anything else raises."""
    try:
        fn()
    except CLEAN as exc:
        msg = str(exc)
        assert msg and "Traceback" not in msg and len(msg) < 2000, msg
        TRIED["rejected"] += 1
        return False
    TRIED["accepted"] += 1
    return True


# ---------------------------------------------------------------------------- params files and --set


LEAVES: list[str] = []


def _leaves():
    if not LEAVES:
        from flows.reference import _submodel
        from nas.config import Config

        def walk(model, prefix):
            for name, f in model.model_fields.items():
                key = prefix + (f.alias or name)
                sub = _submodel(f.annotation)
                if sub is not None and "list" not in str(f.annotation):
                    walk(sub, key + ".")
                else:
                    LEAVES.append(key)

        walk(Config, "")
    return LEAVES


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                         st.text(max_size=12))
yaml_values = st.recursive(yaml_scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                                st.dictionaries(st.text(max_size=6), kids, max_size=3)),
                           max_leaves=8)


def _params_file(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "fuzz.yaml"
    p.write_bytes(data)
    return p


@FUZZ
@given(raw=st.binary(max_size=400))
def test_params_file_of_random_bytes(tmp_path, raw):
    _clean(lambda: load_config(_params_file(tmp_path, raw)))


@FUZZ
@given(text=st.text(alphabet=string.printable + "äé€\u2028", max_size=300))
def test_params_file_of_random_text(tmp_path, text):
    _clean(lambda: load_config(_params_file(tmp_path, text.encode("utf-8"))))


@FUZZ
@given(data=st.data())
def test_params_with_a_wrong_value_at_any_key(tmp_path, data):
    key = data.draw(st.sampled_from(_leaves()))
    value = data.draw(yaml_values)
    tree: dict = {}
    cur = tree
    parts = key.split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
    text = yaml.safe_dump(tree, allow_unicode=True)
    if _clean(lambda: load_config(_params_file(tmp_path, text.encode("utf-8")))):
        load_config(_params_file(tmp_path, text.encode("utf-8")))  # accepted: a valid Config


@FUZZ
@given(depth=st.integers(50, 3000), kind=st.sampled_from(["[", "{a: "]))
def test_params_nested_deeply(tmp_path, depth, kind):
    text = kind * depth + "1" + ("]" if kind == "[" else "}") * depth
    assert not _clean(lambda: load_config(_params_file(tmp_path, text.encode())))


@FUZZ
@given(number=st.one_of(st.integers(10**18, 10**400), st.floats(1e300, 1e308), st.just(float("inf")),
                        st.just(float("nan"))),
       key=st.sampled_from(["search.population", "search.generations", "supernet.epochs", "evaluation.workers",
                            "supernet.lr", "data.val_fraction", "seed", "evaluation.timeout_s"]))
def test_huge_numbers(tmp_path, number, key):
    text = f"{key.split('.')[0]}:\n  {key.split('.')[1]}: {number}\n" if "." in key else f"{key}: {number}\n"
    _clean(lambda: load_config(_params_file(tmp_path, text.encode())))


@FUZZ
@given(override=st.one_of(st.text(max_size=60),
                          st.builds(lambda k, v: f"{k}={v}", st.sampled_from(_leaves()), st.text(max_size=20)),
                          st.builds(lambda k, v: f"{k}={v}", st.text(alphabet=string.ascii_lowercase + "._", max_size=20),
                                    st.text(max_size=10))))
def test_set_overrides(override):
    _clean(lambda: from_dict(apply_overrides({"seed": 0}, [override])))


# ---------------------------------------------------------------------------- .npz files


def _cfg(tmp_path: Path, *sets: str):
    return load_config(ROOT / "params.yaml", [f"data.out_dir={tmp_path / 'prepared'}", *sets])


def _accepts_then_prepares(cfg) -> None:
    """Data that the preflight (seconds, before Prefect starts) accepts must prepare without any
    error, every split non-empty and finite: whatever is wrong must fail fast, not mid-run."""
    from nas.data import prepare

    if _clean(lambda: check(cfg, ("prepare",))):
        p = prepare(cfg.data, cfg.seed)
        for split in ("train", "val", "test"):
            x = getattr(p, f"x_{split}")
            assert len(x) > 0 and np.isfinite(x).all(), f"accepted data gave a bad {split} split: {x.shape}"


dtypes = st.sampled_from(["uint8", "float32", "float64", "int64", "int8", "bool", "complex64", "U3", "datetime64[s]"])


@st.composite
def arrays(draw, role: str):
    ndim = draw(st.integers(0, 5))
    shape = tuple(draw(st.integers(0, 6 if role == "x" else 40)) for _ in range(ndim))
    if role == "x" and ndim >= 3 and draw(st.booleans()):
        shape = (draw(st.integers(1, 40)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    if role == "y" and draw(st.booleans()):
        shape = (draw(st.integers(0, 40)),)
    dt = draw(dtypes)
    size = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dt.startswith("U"):
        a = np.array(["ab"] * size, dtype=dt).reshape(shape)
    elif dt.startswith("datetime"):
        a = np.zeros(shape, dtype=dt)
    else:
        a = (rng.normal(size=shape) * draw(st.sampled_from([1, 3, 300]))).astype(dt)
        if dt.startswith("float") and size and draw(st.booleans()):
            a.flat[rng.integers(size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return a


DEFECTS = ["nan", "inf", "negative_label", "float_labels", "object_free_strings", "bool_x", "complex_x", "empty",
           "one_pixel", "huge_values", "label_gaps", "single_example_class", "wrong_y_length", "y_2d", "x_1d",
           "rgb_channels_last", "no_y", "extra_arrays", "truncated"]


@FUZZ
@given(n_classes=st.integers(2, 6), per_class=st.integers(3, 8), side=st.integers(2, 12),
       dtype=st.sampled_from(["uint8", "float32", "float64", "int64"]),
       defects=st.one_of(st.just([]), st.lists(st.sampled_from(DEFECTS), min_size=1, max_size=2, unique=True)),
       seed=st.integers(0, 2**16))
def test_npz_contents(tmp_path, n_classes, per_class, side, dtype, defects, seed):
    """A valid .npz with zero, one or two defects: accepted files must prepare, others be rejected."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    x = (rng.random((len(y), side, side)) * (255 if dtype in ("uint8", "int64") else 1)).astype(dtype)
    arrays_: dict = {"x": x, "y": y}
    cut = None
    for d in defects:
        x, y = arrays_.get("x", x), arrays_.get("y", y)
        if d == "nan" and x.dtype.kind == "f":
            x.flat[rng.integers(x.size)] = np.nan
        elif d == "inf" and x.dtype.kind == "f":
            x.flat[rng.integers(x.size)] = np.inf
        elif d == "negative_label":
            y = y - 1
        elif d == "float_labels":
            y = y + 0.5
        elif d == "object_free_strings":
            y = y.astype(str)
        elif d == "bool_x":
            x = x > x.mean()
        elif d == "complex_x":
            x = x.astype(np.complex64)
        elif d == "empty":
            x, y = x[:0], y[:0]
        elif d == "one_pixel":
            x = x[:, :1, :1]
        elif d == "huge_values":
            x = x.astype(np.float64) * 1e300
        elif d == "label_gaps":
            y = y * 1000
        elif d == "single_example_class":
            y = np.concatenate([y[:-1], [y.max() + 1]])
        elif d == "wrong_y_length":
            y = y[:-1]
        elif d == "y_2d":
            y = y[:, None]
        elif d == "x_1d":
            x = x.reshape(-1)
        elif d == "rgb_channels_last":
            x = np.repeat(x[..., None], 3, axis=-1)
        elif d == "no_y":
            arrays_.pop("y", None)
        elif d == "extra_arrays":
            arrays_["class_names"] = np.array(["only one name"])
        elif d == "truncated":
            cut = int(rng.integers(0, 2000))
        arrays_["x"] = x
        if "y" in arrays_:
            arrays_["y"] = y
    buf = io.BytesIO()
    np.savez(buf, **arrays_)
    data = buf.getvalue()
    path = tmp_path / "user.npz"
    path.write_bytes(data[:cut] if cut is not None else data)
    _accepts_then_prepares(_cfg(tmp_path, "data.kind=npz", f"data.path={path}", "data.image_size=null"))


@FUZZ
@given(x=arrays("x"), y=arrays("y"), keys=st.sampled_from([("x", "y"), ("x",), ("images", "labels")]))
def test_npz_of_arbitrary_arrays(tmp_path, x, y, keys):
    path = tmp_path / "user.npz"
    np.savez(path, **dict(zip(keys, [x, y])))
    _accepts_then_prepares(_cfg(tmp_path, "data.kind=npz", f"data.path={path}", "data.image_size=null"))


@FUZZ
@given(n_classes=st.integers(2, 5), per_class=st.lists(st.integers(1, 6), min_size=5, max_size=5),
       label_shift=st.sampled_from([0, 0, -1, 1000]))
def test_npz_labels_and_small_classes(tmp_path, n_classes, per_class, label_shift):
    y = np.concatenate([np.full(per_class[c], c) for c in range(n_classes)]) + label_shift
    x = np.random.default_rng(0).random((len(y), 8, 8)).astype(np.float32)
    path = tmp_path / "user.npz"
    np.savez(path, x=x, y=y)
    _accepts_then_prepares(_cfg(tmp_path, "data.kind=npz", f"data.path={path}", "data.image_size=null"))


@pytest.mark.parametrize("payload", [b"", b"not a zip at all", b"PK\x03\x04" + b"\x00" * 40])
def test_npz_that_is_not_an_npz(tmp_path, payload):
    path = tmp_path / "user.npz"
    path.write_bytes(payload)
    assert not _clean(lambda: check(_cfg(tmp_path, "data.kind=npz", f"data.path={path}"), ("prepare",)))


def test_npz_of_object_arrays_is_rejected_without_unpickling(tmp_path):
    path = tmp_path / "user.npz"
    np.savez(path, x=np.array([object()] * 4, dtype=object), y=np.arange(4))
    assert not _clean(lambda: check(_cfg(tmp_path, "data.kind=npz", f"data.path={path}"), ("prepare",)))


# ---------------------------------------------------------------------------- image folders


def _png(size: tuple[int, int], seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0]), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


files = st.one_of(st.builds(lambda w, h, s: ("ok.png", _png((w, h), s)), st.integers(1, 40), st.integers(1, 40),
                            st.integers(0, 99)),
                  st.builds(lambda b: ("bad.png", b), st.binary(max_size=64)),
                  st.just(("notes.txt", b"hello")),
                  st.builds(lambda w, s: ("cut.png", _png((w, w), s)[:30]), st.integers(2, 20), st.integers(0, 99)))


good_files = st.builds(lambda w, h, s: ("ok.png", _png((w, h), s)), st.integers(1, 40), st.integers(1, 40),
                       st.integers(0, 99))


@FUZZ
@given(classes=st.one_of(st.lists(st.lists(good_files, min_size=3, max_size=5), min_size=2, max_size=4),
                         st.lists(st.lists(files, max_size=4), max_size=4)),
       stray=st.booleans())
def test_image_folders(tmp_path, classes, stray):
    root = tmp_path / "images"
    for ci, content in enumerate(classes):
        d = root / f"class{ci}"
        d.mkdir(parents=True, exist_ok=True)
        for fi, (name, data) in enumerate(content):
            (d / f"{fi}_{name}").write_bytes(data)
    root.mkdir(exist_ok=True)
    if stray:
        (root / "README.txt").write_text("a file beside the class folders")
    _accepts_then_prepares(_cfg(tmp_path, "data.kind=folder", f"data.path={root}", "data.image_size=8"))


# ---------------------------------------------------------------------------- Omniglot zips


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


@FUZZ
@given(layout=st.sampled_from(["flat", "too_deep", "no_pngs", "random_bytes", "empty", "one_drawer"]),
       seed=st.integers(0, 50))
def test_omniglot_zips(tmp_path, layout, seed):
    png = _png((20, 20), seed)
    entries = {
        "flat": {f"a_{i}.png": png for i in range(3)},
        "too_deep": {f"x/images_background/Alpha/character01/deeper/0001_{i:02d}.png": png for i in range(1, 4)},
        "no_pngs": {"images_background/Alpha/character01/readme.txt": b"text"},
        "empty": {},
        "one_drawer": {"images_background/Alpha/character01/0001_01.png": png,
                       "images_background/Alpha/character02/0002_01.png": png},
    }
    path = tmp_path / "omniglot.zip"
    path.write_bytes(np.random.default_rng(seed).bytes(300) if layout == "random_bytes" else _zip(entries[layout]))
    assert not _clean(lambda: check(_cfg(tmp_path, "data.kind=omniglot_pooled", f"data.path={path}"), ("prepare",)))


def test_a_modest_zip_bomb_is_rejected_quickly(tmp_path):
    import time

    path = tmp_path / "bomb.zip"
    path.write_bytes(_zip({f"images_background/Alpha/character01/0001_{i:02d}.png": b"\0" * (64 << 20)
                           for i in range(1, 3)}))  # 128 MiB of zeros in about 130 KB
    t0 = time.perf_counter()
    assert not _clean(lambda: check(_cfg(tmp_path, "data.kind=omniglot_pooled", f"data.path={path}"), ("prepare",)))
    assert time.perf_counter() - t0 < 5


# ---------------------------------------------------------------------------- benchmark tables


@FUZZ
@given(drop=st.sets(st.sampled_from(["cell", "cheap_acc", "final_acc", "lat_ms"]), max_size=2),
       nan_rows=st.integers(0, 3), dup_rows=st.integers(0, 3), garbage_rows=st.integers(0, 2),
       n_rows=st.integers(0, 60))
def test_benchmark_tables(tmp_path, synthetic, drop, nan_rows, dup_rows, garbage_rows, n_rows):
    import pandas as pd

    from tests.conftest import synthetic_table_sets

    df = pd.read_csv(synthetic).head(n_rows)
    rng = np.random.default_rng(n_rows)
    if len(df):
        for _ in range(nan_rows):
            df.loc[int(rng.integers(len(df))), "cheap_acc"] = np.nan
        df = pd.concat([df, df.head(dup_rows)])
    df = df.drop(columns=[c for c in drop if c in df.columns])
    text = df.to_csv(index=False) + "".join("not,a,row,of,this,table,at,all\n" for _ in range(garbage_rows))
    path = tmp_path / "table.csv"
    path.write_text(text)
    cfg = load_config(ROOT / "params.yaml", synthetic_table_sets(path) + [f"search.out_dir={tmp_path / 's'}"])
    _clean(lambda: check(cfg, ("search",)))


# ---------------------------------------------------------------------------- checkpoints


@FUZZ
@given(cut=st.integers(0, 2000), version=st.sampled_from([None, 1, 2, 99, "1"]), garbage=st.binary(max_size=40),
       target=st.sampled_from(["checkpoint", "events", "results"]))
def test_search_checkpoints(tmp_path, synthetic, cut, version, garbage, target):
    """checkpoint.json or one of its logs cut short and followed by garbage: resumed, or
    refused with a clean message."""
    from nas.checkpoint import search_checkpointer
    from tests.conftest import synthetic_table_sets

    cfg = load_config(ROOT / "params.yaml", synthetic_table_sets(synthetic) + [f"search.out_dir={tmp_path / 's'}"])
    ck = search_checkpointer(cfg)
    ck.path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": version if target == "checkpoint" else 2, "fingerprint": ck.fp, "fingerprint_hash": ck.fp_hash,
           "next_generation": 1, "log": {"events": 2, "results": 1}, "generation_log": []}
    files = {"checkpoint": (ck.path, json.dumps(doc).encode()),
             "events": (ck.events_path, b'["ask",6,[[0,1,2,3,4,0]],"nb201"]\n["tell",["x"]]\n'),
             "results": (ck.results_path, json.dumps(["x", {"genome": [0, 1, 2, 3, 4, 0], "space": "nb201",
                                                           "metrics": {"val_accuracy": 0.5}, "status": "ok",
                                                           "error": None, "seed": 1, "worker": "w",
                                                           "eval_seconds": 0.1, "started_at": 0.0,
                                                           "finished_at": 0.1}]).encode() + b"\n")}
    for name, (path, text) in files.items():
        path.write_bytes(text[:cut] + garbage if name == target else text)
    _clean(lambda: check(cfg, ("search",), resume=True))

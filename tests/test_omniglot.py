"""Omniglot alphabets as tasks, and multi-task data in general (data.kind omniglot / multi)."""

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nas.config import ConfigError, DataConfig, from_dict
from nas.data import (
    PACKAGED_OMNIGLOT,
    DataError,
    load_prepared,
    omniglot_split,
    prepare,
    read_omniglot,
    save_prepared,
)

ZIP = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "omniglot_background_small1.zip"
ALPHABETS = ["Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"]
CHARACTERS = [24, 22, 24, 40, 26]  # per alphabet in images_background_small1.zip


@pytest.fixture(scope="module")
def packaged():
    return prepare(DataConfig(kind="omniglot"), 0)


def _write_omniglot(root: Path, alphabets=("Alpha", "Beta"), chars=3, drawers=range(1, 21), size=35, seed=0):
    """A tiny Omniglot in the original layout: black strokes (0) on white (255), 1-bit PNGs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for a in alphabets:
        for c in range(1, chars + 1):
            d = root / "images_background" / a / f"character{c:02d}"
            d.mkdir(parents=True)
            for k in drawers:
                img = np.full((size, size), 255, np.uint8)
                img[rng.integers(0, size, 30), rng.integers(0, size, 30)] = 0
                img[c * 3:c * 3 + 4, :] = 0  # a stroke that tells the characters apart
                Image.fromarray(img).convert("1").save(d / f"{100 + c:04d}_{k:02d}.png")
    return root


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, f.relative_to(folder).as_posix() + ("/" if f.is_dir() else ""))
    return out


def test_packaged_copy_has_the_five_alphabets(packaged):
    p = packaged
    assert p.tasks == ALPHABETS and p.n_tasks == 5 and p.is_multitask
    assert p.task_num_classes == CHARACTERS and sum(p.task_num_classes) == 136
    assert p.num_classes == 40  # the widest task
    assert p.input_shape == (1, 28, 28) and p.x_test.shape[1:] == (1, 28, 28)
    assert (len(p.y_train), len(p.y_val), len(p.y_test)) == (1632, 544, 544)  # 136 characters x 12 / 4 / 4
    assert len(p.class_names) == 136 and p.class_names[0] == "Balinese/character01"
    assert p.class_names[p.class_offsets[4] + 25] == "Latin/character26"
    for split in ("train", "val", "test"):
        t, y = getattr(p, f"t_{split}"), getattr(p, f"y_{split}")
        assert t.dtype == np.int64 and y.dtype == np.int64
        assert set(np.unique(t)) == set(range(5))
        for ti, k in enumerate(CHARACTERS):
            assert set(np.unique(y[t == ti])) == set(range(k))
    # normalised by the training split's statistics
    assert abs(float(p.x_train.mean())) < 1e-4 and abs(float(p.x_train.std()) - 1) < 1e-3
    x, y = p.select("val", 4)
    assert len(x) == len(y) == 26 * 4
    # strokes are bright: ink, not paper, is the rare high value
    assert p.mean < 0.2
    size = PACKAGED_OMNIGLOT.stat().st_size
    assert size < 1.5e6, size
    licence = (PACKAGED_OMNIGLOT.parent / "OMNIGLOT_LICENSE").read_text()
    assert "Brenden Lake" in licence and "MIT" in licence


def test_drawer_split_is_12_4_4_per_character_and_seeded():
    o = read_omniglot()
    a, b, other = omniglot_split(o, 0), omniglot_split(o, 0), omniglot_split(o, 1)
    np.testing.assert_array_equal(a, b)
    assert (a != other).any()
    assert len(set(map(tuple, [a[o.character == c] for c in range(len(o.characters))]))) > 1, \
        "every character should get its own drawers"
    for c in range(len(o.characters)):
        idx = o.character == c
        parts = [set(o.drawer[idx][a[idx] == k].tolist()) for k in range(3)]
        assert [len(s) for s in parts] == [12, 4, 4]
        assert set.union(*parts) == set(range(1, 21)) and not (parts[0] & parts[1] or parts[0] & parts[2]
                                                               or parts[1] & parts[2])
    p, q = prepare(DataConfig(kind="omniglot", tasks=["Latin"]), 0), prepare(DataConfig(kind="omniglot"), 0)
    assert p.dataset_hash != prepare(DataConfig(kind="omniglot", tasks=["Latin"]), 1).dataset_hash
    # per class: 12 / 4 / 4 examples
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        assert set(np.bincount(getattr(p, f"y_{split}"))) == {n}
    # choosing other alphabets leaves Latin's split as it was
    lat = q.tasks.index("Latin")
    for split in ("train", "val", "test"):
        xs, ys = q.select(split, lat)
        xp, yp = p.select(split, 0)
        key = lambda x, y: sorted(zip(y.tolist(), np.round(x.reshape(len(x), -1).sum(1), 2).tolist()))  # noqa: E731
        # the two are normalised with different statistics: compare un-normalised pixel sums
        assert key(xs * q.std + q.mean, ys) == key(xp * p.std + p.mean, yp)


def test_original_zip_reads_like_the_packaged_copy():
    if not ZIP.is_file():
        pytest.skip(f"{ZIP} is not here (../shared/benchdata is only in the development checkout)")
    with zipfile.ZipFile(ZIP) as zf:
        chars = {tuple(n.split("/")[1:3]) for n in zf.namelist() if n.endswith(".png")}
    counts = [sum(1 for a, _ in chars if a == name) for name in ALPHABETS]
    assert counts == CHARACTERS
    z, packed = read_omniglot(ZIP), read_omniglot()
    assert z.alphabets == packed.alphabets == ALPHABETS and z.characters == packed.characters
    for k in ("alphabet", "character", "drawer", "character_alphabet"):
        np.testing.assert_array_equal(getattr(z, k), getattr(packed, k))
    np.testing.assert_array_equal(z.images, packed.images)  # the packaged file is this, already downsampled
    p = prepare(DataConfig(kind="omniglot", path=str(ZIP)), 0)
    assert p.tasks == ALPHABETS and p.task_num_classes == CHARACTERS
    assert p.dataset_hash == prepare(DataConfig(kind="omniglot"), 0).dataset_hash


def test_synthetic_folder_and_zip(tmp_path):
    root = _write_omniglot(tmp_path / "omni")
    p = prepare(DataConfig(kind="omniglot", path=str(root), image_size=12), 0)
    assert p.tasks == ["Alpha", "Beta"] and p.task_num_classes == [3, 3]
    assert p.input_shape == (1, 12, 12)
    assert (len(p.y_train), len(p.y_val), len(p.y_test)) == (72, 24, 24)
    o = read_omniglot(root, 12)
    assert o.images.dtype == np.uint8 and o.images.shape == (120, 12, 12)
    assert o.images.mean() < 128, "ink (the black strokes) is stored bright, the white paper dark"
    z = _zip(root, tmp_path / "omni.zip")
    assert prepare(DataConfig(kind="omniglot", path=str(z), image_size=12), 0).dataset_hash == p.dataset_hash
    # one set folder alone (<alphabet>/<character>/<image>.png) reads the same
    one = prepare(DataConfig(kind="omniglot", path=str(root / "images_background"), image_size=12), 0)
    assert one.dataset_hash == p.dataset_hash
    # three channels when grayscale is off
    assert prepare(DataConfig(kind="omniglot", path=str(z), image_size=12, grayscale=False), 0).input_shape == \
        (3, 12, 12)
    # fewer drawers are split in proportion, each split keeping at least one
    few = _write_omniglot(tmp_path / "few", drawers=range(1, 6))
    f = prepare(DataConfig(kind="omniglot", path=str(few), image_size=8), 0)
    assert (len(f.y_train), len(f.y_val), len(f.y_test)) == (18, 6, 6)


def test_task_subset_and_unknown_alphabet():
    p = prepare(DataConfig(kind="omniglot", tasks=["Latin", "Greek"]), 0)
    assert p.tasks == ["Latin", "Greek"] and p.task_num_classes == [26, 24]
    assert p.class_names[0] == "Latin/character01"
    with pytest.raises(DataError, match=r"unknown Omniglot alphabet\(s\) \['Klingon'\].*available: \['Balinese'"):
        prepare(DataConfig(kind="omniglot", tasks=["Latin", "Klingon"]), 0)


def _drop_one_drawer(root):
    (root / "images_background" / "Beta" / "character02" / "0102_07.png").unlink()


def _bad_name(root):
    f = root / "images_background" / "Alpha" / "character01" / "0101_03.png"
    f.rename(f.with_name("drawer-three.png"))


def _too_deep(root):
    shutil.move(str(root / "images_background"), str(root / "python" / "images_background"))


def _corrupt(root):
    (root / "images_background" / "Alpha" / "character01" / "0101_03.png").write_bytes(b"not a png")


@pytest.mark.parametrize("setup, target, needle", [
    (None, "missing", "does not exist"),
    (lambda d: (d / "notes.txt").write_text("hi"), "notes.txt", "neither a zip file nor a folder"),
    (lambda d: (d / "empty").mkdir() or (d / "empty" / "readme.md").write_text("x"), "empty",
     r"no \.png images.*<set>/<alphabet>/<character>/<id>_<drawer>\.png.*readme\.md"),
    (lambda d: _drop_one_drawer(_write_omniglot(d / "omni")), "omni",
     r"alphabet 'Beta', character 'character02' lacks drawer\(s\) \[7\]"),
    (lambda d: _bad_name(_write_omniglot(d / "omni")), "omni", r"does not end in _<drawer>"),
    (lambda d: (d / "omni" / "python").mkdir(parents=True) or _too_deep(_write_omniglot(d / "omni")), "omni",
     r"not laid out as <set>/<alphabet>/<character>.*depth \[5\].*python/images_background"),
    (lambda d: _corrupt(_write_omniglot(d / "omni")), "omni", "not a readable image"),
    (lambda d: (d / "x.zip").write_bytes(b"PK\x03\x04 truncated"), "x.zip", "neither a zip file nor a folder"),
    (lambda d: np.savez(d / "o.npz", images=np.zeros((2, 4, 4), np.uint8)), "o.npz", r"missing array\(s\)"),
])
def test_bad_omniglot_sources_are_clear_errors(tmp_path, setup, target, needle):
    if setup:
        setup(tmp_path)
    with pytest.raises(DataError, match=needle):
        prepare(DataConfig(kind="omniglot", path=str(tmp_path / target), image_size=8), 0)


def test_image_size_too_small_is_a_clear_error():
    with pytest.raises(DataError, match="data.image_size 4 is too small"):
        prepare(DataConfig(kind="omniglot", image_size=4), 0)
    with pytest.raises(DataError, match="data.image_size 5 is too small"):
        prepare(DataConfig(kind="multi", image_size=5, datasets=[{"kind": "digits"}]), 0)


def test_digits_plus_an_alphabet(tmp_path):
    cfg = DataConfig(kind="multi", datasets=[{"kind": "digits"}, {"kind": "omniglot", "tasks": ["Latin"]}])
    p = prepare(cfg, 0)
    assert p.tasks == ["digits", "Latin"] and p.task_num_classes == [10, 26] and p.num_classes == 26
    assert p.input_shape == (1, 28, 28)
    assert {x.shape[1:] for x in (p.x_train, p.x_val, p.x_test)} == {(1, 28, 28)}
    assert len(p.y_train) + len(p.y_val) + len(p.y_test) == 1797 + 26 * 20
    for split in ("train", "val", "test"):
        for ti, k in enumerate(p.task_num_classes):
            _, y = p.select(split, ti)
            assert set(np.unique(y)) == set(range(k))
    assert prepare(cfg, 0).dataset_hash == p.dataset_hash
    # every kind as an entry, converted to one shape (here RGB at 16)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rgb.npz", x=rng.random((30, 3, 10, 12)).astype(np.float32), y=np.repeat([0, 1, 2], 10))
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / "pets" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray((rng.random((20, 24)) * 255).astype(np.uint8)).save(tmp_path / "pets" / c / f"{i}.png")
    q = prepare(DataConfig(kind="multi", image_size=16, grayscale=False, datasets=[
        {"kind": "digits", "name": "d"}, {"kind": "npz", "path": str(tmp_path / "rgb.npz")},
        {"kind": "folder", "path": str(tmp_path / "pets")}, {"kind": "omniglot", "tasks": ["Greek", "Latin"]}]), 0)
    assert q.tasks == ["d", "rgb", "pets", "Greek", "Latin"] and q.task_num_classes == [10, 3, 2, 24, 26]
    assert q.input_shape == (3, 16, 16)
    # the same task twice is an error that says how to tell them apart
    with pytest.raises(DataError, match=r"task name\(s\) \['digits'\] occur more than once"):
        prepare(DataConfig(kind="multi", datasets=[{"kind": "digits"}, {"kind": "digits"}]), 0)
    with pytest.raises(DataError, match=r"data.datasets\[1\] \(npz\): data.path .*does not exist"):
        prepare(DataConfig(kind="multi", datasets=[{"kind": "digits"}, {"kind": "npz", "path": "nope.npz"}]), 0)


@pytest.mark.parametrize("data, needle", [
    ({"kind": "digits", "datasets": [{"kind": "digits"}]}, "data.datasets is only read when data.kind is 'multi'"),
    ({"kind": "multi"}, "data.datasets must list at least one source"),
    ({"kind": "multi", "path": "x", "datasets": [{"kind": "digits"}]}, "data.path is not read"),
    ({"kind": "digits", "tasks": ["Latin"]}, "data.tasks selects Omniglot alphabets"),
    ({"kind": "omniglot", "tasks": []}, "data.tasks must name at least one"),
    ({"kind": "omniglot", "tasks": ["Latin", "Latin"]}, r"names \['Latin'\] more than once"),
    ({"kind": "multi", "datasets": [{"kind": "npz"}]}, r"data.datasets.0.*path is required"),
    ({"kind": "multi", "datasets": [{"kind": "digits", "tasks": ["a"]}]}, "tasks selects Omniglot alphabets"),
    ({"kind": "multi", "datasets": [{"kind": "omniglot", "name": "o"}]}, "named by its alphabets"),
    ({"kind": "multi", "datasets": [{"path": "x"}]}, r"data.datasets.0.kind"),
    ({"kind": "multi", "datasets": [{"kind": "cifar"}]}, r"data.datasets.0.kind"),
    ({"kind": "omniglot", "image_size": 0}, "data.image_size"),
])
def test_config_validation_names_the_key(data, needle):
    with pytest.raises(ConfigError, match=needle):
        from_dict({"data": data})


def test_multitask_round_trip(tmp_path):
    p = prepare(DataConfig(kind="multi", datasets=[{"kind": "digits"}, {"kind": "omniglot", "tasks": ["Latin"]}]), 0)
    save_prepared(p, tmp_path)
    q = load_prepared(tmp_path)
    assert q.tasks == p.tasks and q.task_classes == p.task_classes and q.class_names == p.class_names
    assert q.dataset_hash == p.dataset_hash and q.num_classes == 26 and q.is_multitask
    for k in ("x_train", "y_train", "t_train", "x_val", "t_val", "x_test", "y_test", "t_test"):
        np.testing.assert_array_equal(getattr(q, k), getattr(p, k))
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["tasks"] == ["digits", "Latin"] and meta["task_num_classes"] == [10, 26]


def test_single_task_digits_are_unchanged(tmp_path):
    p = prepare(DataConfig(), 0)
    assert p.tasks == ["main"] and p.n_tasks == 1 and not p.is_multitask
    assert p.task_classes == [p.class_names] and p.task_num_classes == [10] and p.num_classes == 10
    for split in ("train", "val", "test"):
        t = getattr(p, f"t_{split}")
        assert t.dtype == np.int64 and len(t) == len(getattr(p, f"y_{split}")) and not t.any()
    # a prepared directory from before tasks existed (no t_*, no tasks in meta.json) loads as one task
    save_prepared(p, tmp_path)
    with np.load(tmp_path / "data.npz", allow_pickle=False) as f:
        old = {k: f[k] for k in f.files if not k.startswith("t_")}
    np.savez_compressed(tmp_path / "data.npz", **old)
    meta = json.loads((tmp_path / "meta.json").read_text())
    for k in ("tasks", "task_classes", "task_num_classes"):
        meta.pop(k)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    q = load_prepared(tmp_path)
    assert q.tasks == ["main"] and q.num_classes == 10 and q.dataset_hash == p.dataset_hash
    assert not q.t_train.any() and len(q.t_test) == len(q.y_test)

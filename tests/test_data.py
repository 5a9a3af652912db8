import numpy as np
import pytest

from nas.config import DataConfig
from nas.data import DataError, load_prepared, prepare, save_prepared


def test_digits_split_is_stratified_seeded_and_normalised():
    cfg = DataConfig()
    a, b = prepare(cfg, 0), prepare(cfg, 0)
    assert a.dataset_hash == b.dataset_hash
    assert prepare(cfg, 1).dataset_hash != a.dataset_hash
    n = len(a.y_train) + len(a.y_val) + len(a.y_test)
    assert n == 1797
    assert abs(len(a.y_test) / n - cfg.test_fraction) < 0.01
    assert abs(len(a.y_val) / n - cfg.val_fraction) < 0.01
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    # every class appears in every split, in roughly the overall proportion
    for y in (a.y_train, a.y_val, a.y_test):
        assert set(np.unique(y)) == set(range(10))
    assert abs(float(a.x_train.mean())) < 1e-4 and abs(float(a.x_train.std()) - 1) < 1e-3


def test_prepared_round_trip(tmp_path):
    p = prepare(DataConfig(), 0)
    save_prepared(p, tmp_path)
    q = load_prepared(tmp_path)
    assert q.dataset_hash == p.dataset_hash and q.class_names == p.class_names
    np.testing.assert_array_equal(q.x_test, p.x_test)
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")], "temporary files left behind"


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((60, 12, 12)).astype(np.float32) * 255
    y = np.repeat([3, 7, 9], 20)
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["a", "b", "c"]))
    p = prepare(DataConfig(kind="npz", path=str(tmp_path / "d.npz")), 0)
    assert p.input_shape == (1, 12, 12)
    assert p.class_names == ["a", "b", "c"]
    assert set(np.unique(p.y_train)) == {0, 1, 2}


def test_image_folder_dataset(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(8):
            Image.fromarray((rng.random((20, 24)) * 255).astype(np.uint8)).save(tmp_path / c / f"{i}.png")
    p = prepare(DataConfig(kind="folder", path=str(tmp_path), image_size=10), 0)
    assert p.input_shape == (1, 10, 10)
    assert p.class_names == ["cat", "dog"]


@pytest.mark.parametrize("setup, needle", [
    (lambda d: None, "does not exist"),
    (lambda d: np.savez(d / "x.npz", x=np.zeros((10, 4, 4))), "missing array"),
    (lambda d: np.savez(d / "x.npz", x=np.zeros((10, 4)), y=np.zeros(10, int)), "shape"),
    (lambda d: np.savez(d / "x.npz", x=np.zeros((10, 4, 4)), y=np.zeros(9, int)), "'y' must have shape"),
    (lambda d: np.savez(d / "x.npz", x=np.zeros((10, 4, 4)), y=np.zeros(10)), "integer class labels"),
    (lambda d: (d / "x.npz").write_bytes(b"PK\x03\x04 truncated"), "not a readable .npz"),
    (lambda d: np.savez(d / "x.npz", x=np.zeros((4, 4, 4)), y=np.array([0, 0, 0, 1])), "at least 3 examples"),
])
def test_malformed_npz_is_a_clear_error(tmp_path, setup, needle):
    setup(tmp_path)
    with pytest.raises(DataError, match=needle):
        prepare(DataConfig(kind="npz", path=str(tmp_path / "x.npz")), 0)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        prepare(DataConfig(kind="folder", path=str(tmp_path / "missing")), 0)
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="at least 2 class"):
        prepare(DataConfig(kind="folder", path=str(tmp_path)), 0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.png").write_bytes(b"not an image")
    (tmp_path / "only" / "b.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="not a readable image"):
        prepare(DataConfig(kind="folder", path=str(tmp_path)), 0)

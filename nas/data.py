"""Datasets: the bundled digits, a user's ``.npz`` (``x``, ``y``) or a folder of images per class.

``prepare`` makes a seeded stratified train/val/test split, normalises with training
statistics, and writes ``data.npz`` plus ``meta.json`` (with a content hash) atomically.
Nothing is downloaded; user files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.config import DataConfig
from nas.io import atomic_write_bytes, atomic_write_json

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".tif", ".tiff"}


class DataError(ValueError):
    """A dataset that is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Prepared:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    dataset_hash: str
    mean: float = 0.0
    std: float = 1.0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _load_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    return x, d.target.astype(np.int64), [str(c) for c in d.target_names]


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not path.is_file():
        raise DataError(f"data.path {str(path)!r} does not exist (expected a .npz file with arrays 'x' and 'y')")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing}; found {f.files} (expected 'x' images and 'y' labels)")
            x, y = np.asarray(f["x"]), np.asarray(f["y"])
            names = [str(n) for n in f["class_names"]] if "class_names" in f.files else None
    except DataError:
        raise
    except Exception as exc:  # zip errors, pickled object arrays, truncated files
        raise DataError(f"{path}: not a readable .npz of numeric arrays ({exc})") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{path}: 'x' must have shape (N, H, W) or (N, C, H, W), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: 'y' must have shape ({len(x)},), got {y.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise DataError(f"{path}: 'x' must be finite numbers, got dtype {x.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: 'y' must hold integer class labels, got dtype {y.dtype}")
    if y.min() < 0:
        raise DataError(f"{path}: labels must be >= 0, found {int(y.min())}")
    classes = np.unique(y)
    remap = {int(c): i for i, c in enumerate(classes)}
    y = np.array([remap[int(v)] for v in y], dtype=np.int64)
    if names is None or len(names) != len(classes):
        names = [str(int(c)) for c in classes]
    x = x.astype(np.float32)
    if x.max() > 1.0:
        x = x / max(float(x.max()), 1.0)
    return x, y, names


def _load_folder(path: Path, size: int, grayscale: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise DataError(f"data.path {str(path)!r} is not a folder (expected <class>/<image> sub-folders)")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{path}: needs at least 2 class sub-folders, found {classes}")
    xs, ys = [], []
    for ci, cname in enumerate(classes):
        files = sorted(p for p in (path / cname).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path / cname}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("L" if grayscale else "RGB").resize((size, size))
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{f}: not a readable image ({exc})") from None
            xs.append(arr[None] if grayscale else arr.transpose(2, 0, 1))
            ys.append(ci)
    return np.stack(xs), np.array(ys, dtype=np.int64), classes


def load_source(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if cfg.kind == "digits":
        return _load_digits()
    path = Path(cfg.path or "")
    if cfg.kind == "npz":
        return _load_npz(path)
    return _load_folder(path, cfg.image_size, cfg.grayscale)


def split_and_normalise(x: np.ndarray, y: np.ndarray, class_names: list[str], cfg: DataConfig, seed: int) -> Prepared:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    if counts.min() < 3:
        raise DataError(f"every class needs at least 3 examples for a stratified split; class "
                        f"{class_names[int(counts.argmin())]!r} has {int(counts.min())}")
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=cfg.test_fraction, stratify=y, random_state=seed)
    val_share = cfg.val_fraction / (1.0 - cfg.test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed + 1)
    mean = float(x[train].mean())
    std = float(x[train].std()) or 1.0
    norm = ((x - mean) / std).astype(np.float32)
    h = hashlib.sha256()
    for arr in (norm[train], y[train], norm[val], y[val], norm[test], y[test]):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps(class_names).encode())
    return Prepared(norm[train], y[train], norm[val], y[val], norm[test], y[test], class_names, h.hexdigest()[:16],
                    mean, std)


def prepare(cfg: DataConfig, seed: int) -> Prepared:
    x, y, names = load_source(cfg)
    return split_and_normalise(x, y, names, cfg, seed)


def save_prepared(p: Prepared, out_dir: str | Path) -> None:
    import io

    out = Path(out_dir)
    buf = io.BytesIO()
    np.savez_compressed(buf, x_train=p.x_train, y_train=p.y_train, x_val=p.x_val, y_val=p.y_val,
                        x_test=p.x_test, y_test=p.y_test)
    atomic_write_bytes(out / "data.npz", buf.getvalue())
    atomic_write_json(out / "meta.json", {
        "dataset_hash": p.dataset_hash, "class_names": p.class_names, "input_shape": list(p.input_shape),
        "n_train": len(p.y_train), "n_val": len(p.y_val), "n_test": len(p.y_test),
        "normalisation": {"mean": p.mean, "std": p.std,
                          "note": "inputs are (pixel / pixel_max - mean) / std, pixels scaled to [0, 1] first"}})


def load_prepared(out_dir: str | Path) -> Prepared:
    out = Path(out_dir)
    if not (out / "data.npz").is_file() or not (out / "meta.json").is_file():
        raise DataError(f"{out}: no prepared data (run `evonas stage prepare` first)")
    meta = json.loads((out / "meta.json").read_text())
    with np.load(out / "data.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return Prepared(arrays["x_train"], arrays["y_train"], arrays["x_val"], arrays["y_val"], arrays["x_test"],
                    arrays["y_test"], list(meta["class_names"]), meta["dataset_hash"],
                    meta.get("normalisation", {}).get("mean", 0.0), meta.get("normalisation", {}).get("std", 1.0))

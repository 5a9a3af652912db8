"""Datasets: the bundled digits, a user's ``.npz`` (``x``, ``y``), a folder of images per class,
Omniglot, or several of them as tasks of one multi-task run.

``prepare`` makes a seeded train/val/test split, normalises with the training split's scalar
mean and std, and writes ``data.npz`` plus ``meta.json`` (with a content hash) atomically.
Nothing is downloaded; user files are read with ``allow_pickle=False``.

Single-task sources (``data.kind`` digits, npz, folder) are split stratified by
``data.val_fraction`` / ``data.test_fraction`` exactly as before; their :class:`Prepared` has
one task, ``"main"``, and ``t_*`` all zero.

Multi-task data (``data.kind: omniglot`` or ``data.kind: multi`` with ``data.datasets``): every
example carries a task index ``t`` and a label ``y`` in ``0..K_t-1`` of its task; all tasks end
with one image shape (C, ``data.image_size``, ``data.image_size``), C = 1 when
``data.grayscale`` (three channels otherwise). An Omniglot alphabet is one task whose classes
are its characters, split per character by drawer: 12 / 4 / 4 of the 20 drawers for
train / val / test, drawn per character from the seed (other sources of a multi run are split
stratified per task).

Omniglot: Lake, Salakhutdinov & Tenenbaum (2015), "Human-level concept learning through
probabilistic program induction", Science 350(6266); https://github.com/brendenlake/omniglot,
MIT licence, copyright (c) 2015 Brenden Lake. ``data.path: null`` uses the packaged copy
``nas/resources/omniglot_small.npz`` (the 5 alphabets of ``images_background_small1``, 28x28;
licence and attribution in ``nas/resources/OMNIGLOT_LICENSE``), built by
``scripts/make_omniglot_subset.py``; ``data.path`` may instead name the original zip or its
unpacked folder (``<set>/<alphabet>/<character>/<id>_<drawer>.png``, any number of sets and
alphabets, e.g. the full 50) or an ``.npz`` the script wrote.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nas.config import DataConfig, DataSourceConfig
from nas.io import atomic_write_bytes, atomic_write_json

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".tif", ".tiff"}
SINGLE_TASK = "main"
"""The one task name of single-task data (digits, npz, folder, and prepared dirs from before tasks)."""
PACKAGED_OMNIGLOT = Path(__file__).resolve().parent / "resources" / "omniglot_small.npz"
OMNIGLOT_SPLIT = (12, 4, 4)
"""Drawers per character for train / val / test (of 20; other counts are split in proportion)."""
OMNIGLOT_LAYOUT = ("<set>/<alphabet>/<character>/<id>_<drawer>.png "
                   "(e.g. images_background/Latin/character01/0690_01.png)")
MIN_IMAGE_SIZE = 8
"""Smallest data.image_size for Omniglot and multi-task data."""
_OMNIGLOT_NPZ_KEYS = ("images", "alphabet", "character", "drawer", "alphabets", "characters", "character_alphabet")


class DataError(ValueError):
    """A dataset that is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Prepared:
    """Split, normalised examples. ``x_*`` float32 (N, C, H, W); ``y_*`` int64 labels, per task
    (``0..task_num_classes[t]-1``); ``t_*`` int64 task index of each example (zeros for single-task
    data). ``class_names``: single task, the class names; multi-task data, ``"<task>/<class>"`` for
    every class of every task in task order (``class_names[class_offsets[t] + y]``)."""

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
    t_train: np.ndarray = None  # type: ignore[assignment]  # None: all task 0
    t_val: np.ndarray = None  # type: ignore[assignment]
    t_test: np.ndarray = None  # type: ignore[assignment]
    tasks: list[str] = None  # type: ignore[assignment]  # None: [SINGLE_TASK]
    task_classes: list[list[str]] = None  # type: ignore[assignment]  # None: [class_names]

    def __post_init__(self) -> None:
        for split in ("train", "val", "test"):
            if getattr(self, f"t_{split}") is None:
                object.__setattr__(self, f"t_{split}", np.zeros(len(getattr(self, f"y_{split}")), dtype=np.int64))
        if self.tasks is None:
            object.__setattr__(self, "tasks", [SINGLE_TASK])
        if self.task_classes is None:
            object.__setattr__(self, "task_classes", [list(self.class_names)] if len(self.tasks) == 1 else None)
        if self.task_classes is None or len(self.task_classes) != len(self.tasks):
            raise DataError(f"prepared data: {len(self.tasks)} task(s) {self.tasks} need as many class lists, got "
                            f"{None if self.task_classes is None else len(self.task_classes)}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """Single task: the number of classes. Several tasks: the most classes of any task, the
        width of one shared output head whose first ``task_num_classes[t]`` logits serve task t."""
        if len(self.tasks) == 1:
            return len(self.class_names)
        return max(self.task_num_classes)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def task_num_classes(self) -> list[int]:
        """K_t, the number of classes of each task."""
        return [len(c) for c in self.task_classes]

    @property
    def is_multitask(self) -> bool:
        return len(self.tasks) > 1

    @property
    def class_offsets(self) -> list[int]:
        """Where each task's classes start in ``class_names`` (multi-task data)."""
        return [int(v) for v in np.concatenate([[0], np.cumsum(self.task_num_classes)[:-1]])]

    def select(self, split: str, task: int) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of one task in ``split`` ('train', 'val' or 'test')."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if not 0 <= task < self.n_tasks:
            raise ValueError(f"task {task} out of range: {self.n_tasks} task(s) {self.tasks}")
        keep = getattr(self, f"t_{split}") == task
        return getattr(self, f"x_{split}")[keep], getattr(self, f"y_{split}")[keep]


@dataclass(frozen=True)
class Task:
    """One task before the split: ``x`` float32 (N, C, H, W) in [0, 1], ``y`` labels ``0..K-1``.
    ``split`` fixes each example's split (0 train, 1 val, 2 test; Omniglot's drawers); None:
    stratified by data.val_fraction and data.test_fraction."""

    name: str
    class_names: list[str]
    x: np.ndarray
    y: np.ndarray
    split: np.ndarray | None = None


@dataclass(frozen=True)
class Omniglot:
    """Omniglot images with their alphabet, character and drawer, sorted by those three.
    ``images`` uint8 (N, S, S) ink: 255 a stroke, 0 the paper (the originals are black on white)."""

    images: np.ndarray
    alphabet: np.ndarray  # (N,) index into alphabets
    character: np.ndarray  # (N,) index into characters
    drawer: np.ndarray  # (N,) the drawer, 1..20 in Omniglot
    alphabets: list[str]
    characters: list[str]  # character folder names ("character01", ...)
    character_alphabet: np.ndarray  # (C,) index into alphabets
    source: str = ""

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def characters_of(self, a: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.character_alphabet == a)]


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
    if x.size == 0:
        raise DataError(f"{path}: 'x' holds no pixels (shape {x.shape})")
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
    x = x.astype(np.float64)  # scaled before float32, where values beyond 3.4e38 would become inf
    if x.max() > 1.0:
        x = x / float(x.max())
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: 'x' must be finite numbers of a usable range (after scaling to [0, 1])")
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


# ---------------------------------------------------------------------------- Omniglot


def _resize_u8(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if img.shape == (size, size):
        return img
    shrink = size < max(img.shape)
    out = Image.fromarray(img).resize((size, size), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def omniglot_ink(png: bytes, size: int, where: str = "") -> np.ndarray:
    """One Omniglot PNG as uint8 ink (255 = stroke), area-averaged (anti-aliased) to size x size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as im:
            gray = np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{where}: not a readable image ({exc})") from None
    return 255 - _resize_u8(gray, size)


def _drawer_of(name: str, where: str) -> int:
    stem = name.rsplit(".", 1)[0]
    _, sep, tail = stem.rpartition("_")
    if not sep or not tail.isdigit():
        raise DataError(f"{where}: file name {name!r} does not end in _<drawer> (expected e.g. 0690_01.png, "
                        f"layout {OMNIGLOT_LAYOUT})")
    return int(tail)


def _select_alphabets(available: list[str], tasks: Sequence[str] | None, where: str) -> list[str]:
    if tasks is None:
        return sorted(available)
    unknown = [t for t in tasks if t not in available]
    if unknown:
        raise DataError(f"{where}: unknown Omniglot alphabet(s) {unknown} in data.tasks; available: {available}")
    return list(tasks)


def _check_drawers(alphabets: list[str], characters: list[str], character_alphabet: np.ndarray,
                   character: np.ndarray, drawer: np.ndarray, where: str) -> None:
    """Every character of an alphabet has the same drawers, each once, and at least 3 of them."""
    for a, aname in enumerate(alphabets):
        chars = np.flatnonzero(character_alphabet == a)
        if len(chars) < 2:
            raise DataError(f"{where}: alphabet {aname!r} has {len(chars)} character(s); a task needs at least 2")
        per_char = {int(c): drawer[character == c] for c in chars}
        expected = sorted({int(d) for ds in per_char.values() for d in ds})
        for c, ds in per_char.items():
            got = sorted(int(d) for d in ds)
            if got != expected:
                missing = sorted(set(expected) - set(got))
                dup = sorted({d for d in got if got.count(d) > 1})
                what = (f"lacks drawer(s) {missing}" if missing else "") + \
                       (f"{' and ' if missing else ''}has drawer(s) {dup} more than once" if dup else "")
                raise DataError(f"{where}: alphabet {aname!r}, character {characters[c]!r} {what} (every character "
                                f"of an alphabet needs the same drawers; the alphabet has {expected})")
        if len(expected) < 3:
            raise DataError(f"{where}: alphabet {aname!r} has {len(expected)} drawer(s) per character; a "
                            "train/val/test split needs at least 3")


def _omniglot_from_arrays(images: np.ndarray, alpha_of_char: list[str], char_names: list[str], character: np.ndarray,
                          drawer: np.ndarray, alphabets: list[str], source: str, where: str) -> Omniglot:
    """Sort by (alphabet, character, drawer) with ``alphabets`` giving the task order, and check."""
    a_index = {a: i for i, a in enumerate(alphabets)}
    char_order = sorted(range(len(char_names)), key=lambda c: (a_index[alpha_of_char[c]], char_names[c]))
    new_of_old = np.empty(len(char_names), dtype=np.int64)
    new_of_old[char_order] = np.arange(len(char_order))
    characters = [char_names[c] for c in char_order]
    character_alphabet = np.array([a_index[alpha_of_char[c]] for c in char_order], dtype=np.int64)
    character = new_of_old[np.asarray(character, dtype=np.int64)]
    drawer = np.asarray(drawer, dtype=np.int64)
    alphabet = character_alphabet[character]
    order = np.lexsort((drawer, character, alphabet))
    o = Omniglot(images[order], alphabet[order], character[order], drawer[order], list(alphabets), characters,
                 character_alphabet, source)
    _check_drawers(o.alphabets, o.characters, o.character_alphabet, o.character, o.drawer, where)
    return o


def _read_omniglot_npz(path: Path, size: int, tasks: Sequence[str] | None) -> Omniglot:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in _OMNIGLOT_NPZ_KEYS if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing} of an Omniglot .npz (found {f.files}; expected "
                                f"{list(_OMNIGLOT_NPZ_KEYS)} as written by scripts/make_omniglot_subset.py)")
            arr = {k: np.asarray(f[k]) for k in _OMNIGLOT_NPZ_KEYS}
            source = str(f["source"]) if "source" in f.files else str(path)
    except DataError:
        raise
    except Exception as exc:  # zip errors, pickled object arrays, truncated files
        raise DataError(f"{path}: not a readable .npz of numeric and string arrays ({exc})") from None
    images, n = arr["images"], len(arr["images"])
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1] != images.shape[2]:
        raise DataError(f"{path}: 'images' must be uint8 (N, S, S), got {images.dtype} {images.shape}")
    alphabets = [str(a) for a in arr["alphabets"]]
    characters = [str(c) for c in arr["characters"]]
    ca = arr["character_alphabet"]
    for k, bound in (("alphabet", len(alphabets)), ("character", len(characters)), ("drawer", None)):
        v = arr[k]
        if v.shape != (n,) or not np.issubdtype(v.dtype, np.integer):
            raise DataError(f"{path}: {k!r} must be {n} integers, got {v.dtype} {v.shape}")
        if n and (v.min() < 0 or (bound is not None and v.max() >= bound)):
            raise DataError(f"{path}: {k!r} holds indices outside 0..{bound}")
    if ca.shape != (len(characters),) or not np.issubdtype(ca.dtype, np.integer) or \
            (len(ca) and (ca.min() < 0 or ca.max() >= len(alphabets))):
        raise DataError(f"{path}: 'character_alphabet' must index 'alphabets' for each of {len(characters)} characters")
    if not np.array_equal(ca[arr["character"]], arr["alphabet"]):
        raise DataError(f"{path}: 'alphabet' disagrees with 'character_alphabet' of the images' characters")
    chosen = _select_alphabets(alphabets, tasks, str(path))
    keep_a = np.isin(ca, [alphabets.index(a) for a in chosen])
    keep = keep_a[arr["character"]]
    old_chars = np.flatnonzero(keep_a)
    remap = np.full(len(characters), -1, dtype=np.int64)
    remap[old_chars] = np.arange(len(old_chars))
    imgs = images[keep]
    if imgs.shape[1] != size:
        imgs = np.stack([_resize_u8(im, size) for im in imgs]) if len(imgs) else imgs.reshape(0, size, size)
    return _omniglot_from_arrays(imgs, [alphabets[int(ca[c])] for c in old_chars], [characters[c] for c in old_chars],
                                 remap[arr["character"][keep]], arr["drawer"][keep], chosen, source, str(path))


def _list_omniglot(path: Path) -> tuple[list[tuple[str, ...]], Callable[[tuple[str, ...]], bytes], str,
                                        Callable[[], None]]:
    """Relative path parts of every file under a folder or in a zip, a reader for them, what
    ``path`` is, and a close."""
    def visible(parts: tuple[str, ...]) -> bool:
        return not any(p.startswith(".") or p == "__MACOSX" for p in parts)

    if path.is_dir():
        files = [p.relative_to(path).parts for p in path.rglob("*") if p.is_file()]
        return [f for f in files if visible(f)], lambda parts: path.joinpath(*parts).read_bytes(), "folder", \
            lambda: None
    if not zipfile.is_zipfile(path):
        raise DataError(f"data.path {str(path)!r} is neither a zip file nor a folder (expected Omniglot as a zip or "
                        f"folder {OMNIGLOT_LAYOUT}, or an .npz from scripts/make_omniglot_subset.py)")
    try:
        zf = zipfile.ZipFile(path)
        names = [n for n in zf.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable zip file ({exc})") from None
    return [tuple(n.split("/")) for n in names if visible(tuple(n.split("/")))], \
        lambda parts: zf.read("/".join(parts)), "zip", zf.close


def read_omniglot(path: str | Path | None = None, image_size: int = 28, tasks: Sequence[str] | None = None) -> Omniglot:
    """Omniglot from ``path`` (the original zip or folder, or an .npz the subset script wrote;
    None: the packaged 5-alphabet copy), images at ``image_size``, alphabets ``tasks`` (None: all,
    sorted by name; else in the order given)."""
    if image_size < MIN_IMAGE_SIZE:
        raise DataError(f"data.image_size {image_size} is too small for Omniglot: at least {MIN_IMAGE_SIZE}")
    if path is None:
        if not PACKAGED_OMNIGLOT.is_file():
            raise DataError(f"the packaged Omniglot copy {str(PACKAGED_OMNIGLOT)!r} is missing (reinstall evonas, "
                            "or set data.path to an Omniglot zip or folder)")
        return _read_omniglot_npz(PACKAGED_OMNIGLOT, image_size, tasks)
    path = Path(path)
    if not path.exists():
        raise DataError(f"data.path {str(path)!r} does not exist (expected Omniglot as a zip or folder "
                        f"{OMNIGLOT_LAYOUT}, or null for the packaged 5-alphabet copy)")
    if path.is_file() and path.suffix.lower() == ".npz":
        return _read_omniglot_npz(path, image_size, tasks)
    files, read, what, close = _list_omniglot(path)
    try:
        return _read_omniglot_listing(path, files, read, what, image_size, tasks)
    finally:
        close()


def _read_omniglot_listing(path: Path, files: list[tuple[str, ...]], read: Callable[[tuple[str, ...]], bytes],
                           what: str, image_size: int, tasks: Sequence[str] | None) -> Omniglot:
    pngs = [f for f in files if f[-1].lower().endswith(".png")]
    if not pngs:
        shown = ["/".join(f) for f in files[:5]]
        raise DataError(f"{path}: no .png images in this {what} (expected {OMNIGLOT_LAYOUT}; found "
                        f"{len(files)} other file(s){': ' + ', '.join(shown) if shown else ''})")
    depths = sorted({len(f) for f in pngs})
    if len(depths) != 1 or depths[0] not in (3, 4):
        examples = ", ".join(sorted({"/".join(f) for f in pngs if len(f) not in (3, 4)} or
                                    {"/".join(f) for f in pngs})[:3])
        raise DataError(f"{path}: images are not laid out as {OMNIGLOT_LAYOUT} (or <alphabet>/<character>/<image>"
                        f".png inside one set); found image(s) at depth {depths}, e.g. {examples}")
    entries: dict[tuple[str, str], list[tuple[int, tuple[str, ...]]]] = {}
    set_of: dict[str, str] = {}
    for f in pngs:
        sname, (aname, cname, fname) = ("/".join(f[:-3]), f[-3:])
        if set_of.setdefault(aname, sname) != sname:
            raise DataError(f"{path}: alphabet {aname!r} is in two sets ({set_of[aname]!r} and {sname!r}); "
                            "alphabet names must be unique")
        entries.setdefault((aname, cname), []).append((_drawer_of(fname, f"{path}: {'/'.join(f)}"), f))
    available = sorted(set_of)
    chosen = _select_alphabets(available, tasks, str(path))
    wanted = set(chosen)
    keys = sorted(k for k in entries if k[0] in wanted)
    char_alpha = [k[0] for k in keys]
    char_names = [k[1] for k in keys]
    character, drawer, images = [], [], []
    for ci, k in enumerate(keys):
        for d, f in sorted(entries[k]):
            character.append(ci)
            drawer.append(d)
            images.append(f)
    # check the drawers before decoding thousands of images
    a_index = {a: i for i, a in enumerate(chosen)}
    _check_drawers(chosen, char_names, np.array([a_index[a] for a in char_alpha], dtype=np.int64),
                   np.array(character, dtype=np.int64), np.array(drawer, dtype=np.int64), str(path))
    decoded = np.stack([omniglot_ink(read(f), image_size, f"{path}: {'/'.join(f)}") for f in images])
    return _omniglot_from_arrays(decoded, char_alpha, char_names, np.array(character), np.array(drawer), chosen,
                                 f"{path.name} ({what})", str(path))


def save_omniglot_npz(o: Omniglot, path: str | Path) -> None:
    """The compact form ``read_omniglot`` reads back (what the packaged copy is)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, images=o.images.astype(np.uint8), alphabet=o.alphabet.astype(np.int16),
                        character=o.character.astype(np.int16), drawer=o.drawer.astype(np.int16),
                        alphabets=np.array(o.alphabets), characters=np.array(o.characters),
                        character_alphabet=o.character_alphabet.astype(np.int16), source=np.array(o.source))
    atomic_write_bytes(Path(path), buf.getvalue())


def _drawer_counts(n: int, counts: tuple[int, int, int] = OMNIGLOT_SPLIT) -> tuple[int, int, int]:
    """``counts`` (train / val / test drawers of 20) for ``n`` drawers: as given when ``n`` is 20,
    else val and test in proportion (at least one each) and the rest to training."""
    if n == sum(counts):
        return tuple(counts)  # type: ignore[return-value]
    val = max(1, round(n * counts[1] / sum(counts)))
    test = max(1, round(n * counts[2] / sum(counts)))
    return n - val - test, val, test


def omniglot_split(o: Omniglot, seed: int, counts: tuple[int, int, int] = OMNIGLOT_SPLIT) -> np.ndarray:
    """0 train / 1 val / 2 test for every image: each character's drawers shuffled by a generator
    seeded from ``seed`` and the character's name (so choosing other alphabets leaves a
    character's split as it was) and cut by ``counts`` (12 / 4 / 4 of 20 by default)."""
    split = np.empty(len(o.drawer), dtype=np.int8)
    for c, cname in enumerate(o.characters):
        idx = np.flatnonzero(o.character == c)
        key = zlib.crc32(f"{o.alphabets[int(o.character_alphabet[c])]}/{cname}".encode())
        rng = np.random.default_rng([seed % 2**32, key])
        drawers = np.unique(o.drawer[idx])
        perm = drawers[rng.permutation(len(drawers))]
        n_train, n_val, _ = _drawer_counts(len(drawers), counts)
        part = {int(d): 0 if i < n_train else 1 if i < n_train + n_val else 2 for i, d in enumerate(perm)}
        split[idx] = [part[int(d)] for d in o.drawer[idx]]
    return split


def writer_split(o: Omniglot, seed: int, counts: tuple[int, int, int] = OMNIGLOT_SPLIT) -> np.ndarray:
    """0 train / 1 val / 2 test for every image, by writer: the drawer numbers are shuffled once
    by a generator seeded from ``seed`` and cut by ``counts`` (12 / 4 / 4 of 20 by default), and every alphabet and
    character uses that one assignment, so all images of one drawer number fall in one split
    and no writer's hand is seen in training and again in validation or test."""
    drawers = np.unique(o.drawer)
    if len(drawers) < 3:
        raise DataError(f"{o.source or 'omniglot'}: {len(drawers)} drawer number(s); a writer split needs at least 3")
    perm = drawers[np.random.default_rng([seed % 2**32, 0x0D8A]).permutation(len(drawers))]
    n_train, n_val, _ = _drawer_counts(len(drawers), counts)
    part = np.empty(int(drawers.max()) + 1, dtype=np.int8)
    part[perm[:n_train]], part[perm[n_train:n_train + n_val]], part[perm[n_train + n_val:]] = 0, 1, 2
    return part[o.drawer]


def omniglot_pooled(o: Omniglot, seed: int, grayscale: bool = True,
                    counts: tuple[int, int, int] = OMNIGLOT_SPLIT, rotations: int = 1) -> Task:
    """Every character of every chosen alphabet as one class of a single task (136 classes for
    the packaged 5 alphabets), split by writer (:func:`writer_split`, drawers cut by ``counts``).
    ``rotations`` 4 adds every character turned by 90, 180 and 270 degrees (counter-clockwise) as
    three new classes, class ``c + k * n_characters`` for the turn by ``k`` quarters; a turned image
    keeps the split of the image it was turned from, so a writer stays in one split."""
    x = (o.images.astype(np.float32) / 255.0)[:, None]
    if not grayscale:
        x = np.repeat(x, 3, axis=1)
    names = [f"{o.alphabets[int(o.character_alphabet[c])]}/{name}" for c, name in enumerate(o.characters)]
    y, split = o.character.astype(np.int64), writer_split(o, seed, counts)
    if rotations > 1:
        n = len(names)
        x = np.ascontiguousarray(np.concatenate([np.rot90(x, k, axes=(2, 3)) for k in range(rotations)]))
        y = np.concatenate([y + k * n for k in range(rotations)])
        split = np.tile(split, rotations)
        names = names + [f"{nm}/rot{90 * k}" for k in range(1, rotations) for nm in names[:n]]
    return Task(SINGLE_TASK, names, x, y, split)


def omniglot_tasks(o: Omniglot, seed: int, grayscale: bool = True,
                   counts: tuple[int, int, int] = OMNIGLOT_SPLIT) -> list[Task]:
    """One task per alphabet: classes are its characters, the split by drawer (omniglot_split)."""
    split = omniglot_split(o, seed, counts)
    out = []
    for a, aname in enumerate(o.alphabets):
        chars = o.characters_of(a)
        idx = np.flatnonzero(o.alphabet == a)
        local = {c: i for i, c in enumerate(chars)}
        x = (o.images[idx].astype(np.float32) / 255.0)[:, None]
        if not grayscale:
            x = np.repeat(x, 3, axis=1)
        y = np.array([local[int(c)] for c in o.character[idx]], dtype=np.int64)
        out.append(Task(aname, [o.characters[c] for c in chars], x, y, split[idx]))
    return out


# ---------------------------------------------------------------------------- several tasks


def _to_common(x: np.ndarray, size: int, grayscale: bool, where: str) -> np.ndarray:
    """(N, C, H, W) in [0, 1] to (N, 1 or 3, size, size): luminance or replicated gray, then an
    anti-aliased bilinear resize."""
    c = x.shape[1]
    if c not in (1, 3):
        raise DataError(f"{where}: images have {c} channels; multi-task data takes 1 (gray) or 3 (RGB)")
    if grayscale and c == 3:
        x = np.tensordot(np.array([0.299, 0.587, 0.114], dtype=np.float32), x, axes=([0], [1]))[:, None]
    elif not grayscale and c == 1:
        x = np.repeat(x, 3, axis=1)
    return resize_images(x, size)


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) in [0, 1] to (N, C, size, size): anti-aliased bilinear (area-like when shrinking)."""
    if x.shape[2:] != (size, size) and len(x):
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            x = F.interpolate(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), size=(size, size),
                              mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1).numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def _source_tasks(entry: DataSourceConfig, size: int, grayscale: bool, seed: int) -> list[Task]:
    if entry.kind == "omniglot":
        return omniglot_tasks(read_omniglot(entry.path, size, entry.tasks), seed, grayscale)
    if entry.kind == "digits":
        x, y, names = _load_digits()
        name = "digits"
    elif entry.kind == "npz":
        x, y, names = _load_npz(Path(entry.path or ""))
        name = Path(entry.path or "").stem
    else:
        x, y, names = _load_folder(Path(entry.path or ""), size, grayscale)
        name = Path(entry.path or "").resolve().name
    return [Task(entry.name or name, names, _to_common(x, size, grayscale, entry.kind), y)]


def load_tasks(cfg: DataConfig, seed: int) -> list[Task]:
    """The tasks of any data.kind (single-task kinds: one task, ``"main"``); Omniglot's split
    depends on ``seed``."""
    if cfg.kind == "omniglot":
        return omniglot_tasks(read_omniglot(cfg.path, cfg.resolved_image_size() or 28, cfg.tasks), seed,
                              cfg.grayscale, tuple(cfg.omniglot_drawers))
    if cfg.kind == "omniglot_pooled":
        return [omniglot_pooled(read_omniglot(cfg.path, cfg.resolved_image_size() or 16, cfg.tasks), seed,
                                cfg.grayscale, tuple(cfg.omniglot_drawers), cfg.omniglot_rotations)]
    if cfg.kind != "multi":
        x, y, names = load_source(cfg)
        return [Task(SINGLE_TASK, names, x, y)]
    size = cfg.resolved_image_size() or 28
    if size < MIN_IMAGE_SIZE:
        raise DataError(f"data.image_size {size} is too small for multi-task data: at least {MIN_IMAGE_SIZE}")
    tasks: list[Task] = []
    for i, entry in enumerate(cfg.datasets):
        try:
            tasks += _source_tasks(entry, size, cfg.grayscale, seed)
        except DataError as exc:
            raise DataError(f"data.datasets[{i}] ({entry.kind}): {exc}") from None
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"data.datasets: task name(s) {dup} occur more than once (tasks: {names}); give the entries "
                        "distinct names with name, or select other alphabets with tasks")
    return tasks


# ---------------------------------------------------------------------------- split, save, load


def load_source(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The examples of a single-task data.kind (digits, npz, folder); see load_tasks for all kinds."""
    if cfg.kind in ("omniglot", "multi", "omniglot_pooled"):
        raise DataError(f"data.kind '{cfg.kind}' is read with load_tasks")
    if cfg.kind == "digits":
        return _load_digits()
    path = Path(cfg.path or "")
    if cfg.kind == "npz":
        x, y, names = _load_npz(path)
        size = cfg.resolved_image_size()
        return (resize_images(x, size) if size else x), y, names
    return _load_folder(path, cfg.resolved_image_size() or 16, cfg.grayscale)


def _stratified(y: np.ndarray, class_names: list[str], cfg: DataConfig, seed: int,
                where: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    if counts.min() < 3:
        raise DataError(f"{where}every class needs at least 3 examples for a stratified split; class "
                        f"{class_names[int(counts.argmin())]!r} has {int(counts.min())}")
    idx = np.arange(len(y))
    try:
        rest, test = train_test_split(idx, test_size=cfg.test_fraction, stratify=y, random_state=seed)
        val_share = cfg.val_fraction / (1.0 - cfg.test_fraction)
        train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed + 1)
    except ValueError:  # many classes, few examples: a split smaller than the number of classes
        return _per_class_split(y, cfg, seed)
    return train, val, test


def _per_class_split(y: np.ndarray, cfg: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split for data with many classes and few examples each (where a whole split
    holds fewer examples than there are classes): every class, shuffled, gives round(n * fraction)
    examples, at least one, to test and to validation, and the rest to training."""
    rng = np.random.default_rng([seed % 2**32, 0x5B1])
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in range(int(y.max()) + 1):
        members = rng.permutation(np.flatnonzero(y == c))
        n = len(members)
        n_test = max(1, int(round(n * cfg.test_fraction)))
        n_val = max(1, int(round(n * cfg.val_fraction)))
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test:n_test + n_val])
        parts[0].append(members[n_test + n_val:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def split_and_normalise(x: np.ndarray, y: np.ndarray, class_names: list[str], cfg: DataConfig, seed: int) -> Prepared:
    train, val, test = _stratified(y, class_names, cfg, seed)
    mean = float(x[train].mean())
    std = float(x[train].std()) or 1.0
    norm = ((x - mean) / std).astype(np.float32)
    h = hashlib.sha256()
    for arr in (norm[train], y[train], norm[val], y[val], norm[test], y[test]):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps(class_names).encode())
    return Prepared(norm[train], y[train], norm[val], y[val], norm[test], y[test], class_names, h.hexdigest()[:16],
                    mean, std)


def split_tasks(tasks: list[Task], cfg: DataConfig, seed: int) -> Prepared:
    """Split every task (its own ``split``, else stratified), concatenate the tasks, shuffle each
    split (seeded) and normalise by the training split's scalar mean and std."""
    if not tasks:
        raise DataError("no tasks to prepare")
    shapes = {t.x.shape[1:] for t in tasks}
    if len(shapes) != 1:
        raise DataError(f"tasks differ in image shape {sorted(shapes)}: every task must end with one (C, H, W)")
    parts: list[list[tuple[int, Task, np.ndarray]]] = [[], [], []]
    for ti, t in enumerate(tasks):
        if t.split is None:
            idx = _stratified(t.y, t.class_names, cfg, seed, f"task {t.name!r}: ")
        else:
            idx = tuple(np.flatnonzero(t.split == k) for k in range(3))
        for k in range(3):
            parts[k].append((ti, t, idx[k]))
    rng = np.random.default_rng(seed % 2**32)
    xs, ys, ts = [], [], []
    for k in range(3):
        x = np.concatenate([t.x[i] for _, t, i in parts[k]]).astype(np.float32, copy=False)
        y = np.concatenate([t.y[i] for _, t, i in parts[k]]).astype(np.int64)
        ti = np.concatenate([np.full(len(i), n, dtype=np.int64) for n, _, i in parts[k]])
        order = rng.permutation(len(y))
        xs.append(x[order]), ys.append(y[order]), ts.append(ti[order])
    if not len(ys[0]):
        raise DataError("the training split is empty")
    mean = float(xs[0].mean())
    std = float(xs[0].std()) or 1.0
    xs = [((x - mean) / std).astype(np.float32) for x in xs]
    names = [t.name for t in tasks]
    task_classes = [list(t.class_names) for t in tasks]
    single = len(tasks) == 1 and tasks[0].name == SINGLE_TASK  # one pooled task: plain class names
    class_names = list(tasks[0].class_names) if single else [f"{t.name}/{c}" for t in tasks for c in t.class_names]
    h = hashlib.sha256()
    for k in range(3):
        for arr in (xs[k], ys[k], ts[k]):
            h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps([names, task_classes]).encode())
    return Prepared(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], class_names, h.hexdigest()[:16], mean, std,
                    ts[0], ts[1], ts[2], names, task_classes)


def prepare(cfg: DataConfig, seed: int) -> Prepared:
    if cfg.kind in ("omniglot", "multi", "omniglot_pooled"):
        return split_tasks(load_tasks(cfg, seed), cfg, seed)
    x, y, names = load_source(cfg)
    return split_and_normalise(x, y, names, cfg, seed)


def save_prepared(p: Prepared, out_dir: str | Path) -> None:
    out = Path(out_dir)
    buf = io.BytesIO()
    np.savez_compressed(buf, x_train=p.x_train, y_train=p.y_train, x_val=p.x_val, y_val=p.y_val,
                        x_test=p.x_test, y_test=p.y_test, t_train=p.t_train, t_val=p.t_val, t_test=p.t_test)
    atomic_write_bytes(out / "data.npz", buf.getvalue())
    atomic_write_json(out / "meta.json", {
        "dataset_hash": p.dataset_hash, "class_names": p.class_names, "input_shape": list(p.input_shape),
        "n_train": len(p.y_train), "n_val": len(p.y_val), "n_test": len(p.y_test),
        "tasks": p.tasks, "task_classes": p.task_classes, "task_num_classes": p.task_num_classes,
        "normalisation": {"mean": p.mean, "std": p.std,
                          "note": "inputs are (pixel / pixel_max - mean) / std, pixels scaled to [0, 1] first"}})


def load_prepared(out_dir: str | Path) -> Prepared:
    """What save_prepared wrote; a directory from before tasks existed loads as one task."""
    out = Path(out_dir)
    if not (out / "data.npz").is_file() or not (out / "meta.json").is_file():
        raise DataError(f"{out}: no prepared data (run `evonas stage prepare` first)")
    meta = json.loads((out / "meta.json").read_text())
    with np.load(out / "data.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    tasks = meta.get("tasks")
    task_classes = meta.get("task_classes")
    p = Prepared(arrays["x_train"], arrays["y_train"], arrays["x_val"], arrays["y_val"], arrays["x_test"],
                 arrays["y_test"], list(meta["class_names"]), meta["dataset_hash"],
                 meta.get("normalisation", {}).get("mean", 0.0), meta.get("normalisation", {}).get("std", 1.0),
                 arrays.get("t_train"), arrays.get("t_val"), arrays.get("t_test"),
                 list(tasks) if tasks is not None else None,
                 [list(c) for c in task_classes] if task_classes is not None else None)
    for split in ("train", "val", "test"):
        t = getattr(p, f"t_{split}")
        if t.shape != getattr(p, f"y_{split}").shape or (len(t) and (t.min() < 0 or t.max() >= p.n_tasks)):
            raise DataError(f"{out}: t_{split} does not index the {p.n_tasks} task(s) of meta.json")
    return p

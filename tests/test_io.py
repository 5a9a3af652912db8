"""Atomic writes: all or nothing, and the file mode ``open()`` would give (the user's umask)."""

from __future__ import annotations

import os
import stat

import pytest

from nas.io import atomic_write_bytes, atomic_write_json, atomic_write_text


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_keep_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        for i, write in enumerate((lambda p: atomic_write_text(p, "x"), lambda p: atomic_write_bytes(p, b"x"),
                                   lambda p: atomic_write_json(p, {"a": 1}))):
            path = tmp_path / f"out{i}"
            write(path)
            plain = tmp_path / f"plain{i}"
            with open(plain, "w") as fh:
                fh.write("x")
            assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")

    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": object()})
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]

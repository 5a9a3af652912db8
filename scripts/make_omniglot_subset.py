"""Build the packaged Omniglot copy ``nas/resources/omniglot_small.npz`` from the original zip.

    python scripts/make_omniglot_subset.py [SOURCE] [--out PATH] [--size 28] [--tasks Latin Greek ...]

SOURCE defaults to ``../shared/benchdata/omniglot_background_small1.zip`` (the 5 alphabets of
"background small 1": 136 characters, 2,720 105x105 PNGs); any Omniglot zip or folder in the
original layout ``<set>/<alphabet>/<character>/<id>_<drawer>.png`` works, e.g. the full 50
alphabets, to make a fast local cache for ``data.path``.

The file holds, compressed (``np.savez_compressed``, read with ``allow_pickle=False``):
``images`` uint8 (N, S, S) ink (255 = stroke: the black-on-white originals inverted), area-averaged
to S x S; ``alphabet``, ``character``, ``drawer`` (N,) int16; ``alphabets``, ``characters``
(folder names) and ``character_alphabet`` (index of each character's alphabet); ``source``.

Omniglot: Lake, Salakhutdinov & Tenenbaum (2015), Science 350(6266);
https://github.com/brendenlake/omniglot, MIT licence, copyright (c) 2015 Brenden Lake. The
licence travels with the packaged file as ``nas/resources/OMNIGLOT_LICENSE``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.data import PACKAGED_OMNIGLOT, read_omniglot, save_omniglot_npz  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "benchdata" / "omniglot_background_small1.zip"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", default=str(DEFAULT_SOURCE), help="Omniglot zip or folder")
    ap.add_argument("--out", default=str(PACKAGED_OMNIGLOT), help="where to write the .npz")
    ap.add_argument("--size", type=int, default=28, help="side length of the stored images")
    ap.add_argument("--tasks", nargs="*", default=None, help="alphabets to keep (default: all)")
    args = ap.parse_args(argv)
    o = read_omniglot(args.source, args.size, args.tasks)
    save_omniglot_npz(o, args.out)
    kib = Path(args.out).stat().st_size / 1024
    print(f"{args.out}: {len(o.alphabets)} alphabets, {len(o.characters)} characters, {len(o.images)} images "
          f"{args.size}x{args.size}, {kib:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

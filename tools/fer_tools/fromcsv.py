"""FER2013 as most people have it, the public ``fer2013.csv`` (columns emotion, pixels,
Usage), made into the folder the host tools read: ``Training.npz``, ``PublicTest.npz``,
``PrivateTest.npz`` with keys x (N×48×48 uint8), y (labels 0..6, the csv's own order:
angry, disgust, fear, happy, sad, surprise, neutral) and id (the csv's row).

Each face is histogram-equalised (OpenCV's equalizeHist), as this project's data and
models are: equalising the original release reproduces the project's faces to about 4
grey levels, rank correlation 0.998 (docs/models.md). Where to get the file: the Kaggle
competition "Challenges in Representation Learning: Facial Expression Recognition
Challenge" (its data page), or any mirror of ``fer2013.csv``.

    python -m fer_tools.fromcsv fer2013.csv --out data/fer2013
    fer-train --data data/fer2013 ...

FER+'s crowd votes (``fer2013new.csv`` from github.com/microsoft/FERPlus: columns Usage,
Image name, then ten vote counts) list the same images in the same order as
``fer2013.csv``, so ``--ferplus fer2013new.csv --ferplus-out data/ferplus`` attaches them by
row: ``<split>.npz`` with ``row`` (index into that split's x/y), ``votes`` (M×10: neutral,
happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF) and
``ferplus_name``, as ``../shared/data/ferplus`` has them (images FER+ left without a name
are left out). Read that folder's README before mixing votes into training targets.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

SPLITS = ("Training", "PublicTest", "PrivateTest")
COLUMNS = ("emotion", "pixels", "Usage")
VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
         "unknown", "NF")


class CsvError(Exception):
    """A file that is not the public fer2013.csv; the message names it and the row."""


@contextmanager
def _open_rows(path: Path, columns: tuple[str, ...]) -> Iterator[csv.DictReader]:
    """A CSV's rows as dicts, once it is known to have ``columns`` (CsvError otherwise)."""
    try:
        fh = open(path, newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise CsvError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        if not set(columns) <= set(reader.fieldnames or ()):
            raise CsvError(f"{path}: needs the columns {', '.join(columns)}; has "
                           f"{', '.join(reader.fieldnames or ()) or 'none'}")
        yield reader


def read_csv(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """split -> (x, y, id) from fer2013.csv, each face equalised."""
    import cv2

    rows: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in SPLITS}
    with _open_rows(path, COLUMNS) as reader:
        for i, row in enumerate(reader):
            where = f"{path}: row {i + 2}"
            if row["Usage"] not in rows:
                raise CsvError(f"{where}: Usage {row['Usage']!r} is not one of {SPLITS}")
            try:
                label = int(row["emotion"])
                pixels = np.array(row["pixels"].split(), dtype=np.int16)
            except ValueError:
                raise CsvError(f"{where}: emotion and pixels must be numbers") from None
            if not 0 <= label <= 6 or pixels.size != 48 * 48 or pixels.min() < 0 \
                    or pixels.max() > 255:
                raise CsvError(f"{where}: emotion 0..6 and 2,304 pixels 0..255 expected")
            x, y, ids = rows[row["Usage"]]
            x.append(cv2.equalizeHist(pixels.astype(np.uint8).reshape(48, 48)))
            y.append(label)
            ids.append(i)
    return {s: (np.stack(x) if x else np.zeros((0, 48, 48), np.uint8),
                np.asarray(y, np.uint8), np.asarray(ids, np.int64))
            for s, (x, y, ids) in rows.items()}


def read_ferplus(path: Path, splits: dict) -> dict[str, dict[str, np.ndarray]]:
    """split -> {row, votes, ferplus_name}: FER+'s votes for the faces of ``splits`` (from
    read_csv, whose id is the fer2013.csv row), matched row by row."""
    with _open_rows(path, ("Usage", "Image name", *VOTES)) as reader:
        rows = list(reader)
    total = sum(len(y) for _x, y, _ids in splits.values())
    if len(rows) != total:
        raise CsvError(f"{path}: {len(rows)} rows, but fer2013.csv has {total}: not the same "
                       "release")
    out = {}
    for name, (_x, _y, ids) in splits.items():
        keep, votes, names = [], [], []
        for k, i in enumerate(ids):
            row = rows[int(i)]
            if row["Usage"] != name:
                raise CsvError(f"{path}: row {int(i) + 2} is {row['Usage']!r} in FER+ but "
                               f"{name!r} in fer2013.csv")
            if not row["Image name"].strip():
                continue
            try:
                v = [int(row[c]) for c in VOTES]
            except ValueError:
                raise CsvError(f"{path}: row {int(i) + 2}: votes must be numbers") from None
            keep.append(k)
            votes.append(v)
            names.append(row["Image name"].strip())
        out[name] = {"row": np.asarray(keep, np.int64),
                     "votes": np.asarray(votes, np.uint8).reshape(-1, len(VOTES)),
                     "ferplus_name": np.asarray(names, dtype=str)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_tools.fromcsv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", type=Path, help="the public fer2013.csv")
    p.add_argument("--out", type=Path, required=True, help="folder for the .npz splits")
    p.add_argument("--ferplus", type=Path, help="FER+'s fer2013new.csv, to attach its votes")
    p.add_argument("--ferplus-out", type=Path, help="folder for the votes (with --ferplus)")
    args = p.parse_args(argv)
    if bool(args.ferplus) != bool(args.ferplus_out):
        p.error("--ferplus and --ferplus-out go together")
    try:
        splits = read_csv(args.csv)
        votes = read_ferplus(args.ferplus, splits) if args.ferplus else {}
    except CsvError as exc:
        print(f"fromcsv: {exc}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, (x, y, ids) in splits.items():
            np.savez_compressed(args.out / f"{name}.npz", x=x, y=y, id=ids)
            print(f"{args.out / (name + '.npz')}: {len(y)} faces")
        if votes:
            args.ferplus_out.mkdir(parents=True, exist_ok=True)
            for name, arrays in votes.items():
                np.savez_compressed(args.ferplus_out / f"{name}.npz", **arrays)
                print(f"{args.ferplus_out / (name + '.npz')}: votes for {len(arrays['row'])}")
    except OSError as exc:
        print(f"fromcsv: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 5
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

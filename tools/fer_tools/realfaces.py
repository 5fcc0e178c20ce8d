"""Faces from the real-face development set, cut as the device cuts them, for training on
some of its performers and scoring on the others.

The set (../shared/data/realfaces: whole photographs, MANIFEST.tsv with local_file, label,
performer) is read where it lies, never copied. A split is by performer, never by picture:
a model that saw a person's other pictures would be scored on a face it knows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from fer_pi.core.labels import LABELS
from fer_tools.data import DataError, file_sha256
from fer_tools.portable import portable_path


def default_dir() -> Path | None:
    """$FER_REALFACES, else ../shared/data/realfaces (as the detection benchmark finds it)."""
    from fer_pi.devtools.scenes import realfaces_dir

    return realfaces_dir()


def parse_performers(text: str) -> set[str]:
    """'01-15' or '01,03,07' (as the manifest writes them) -> the set of names."""
    out: set[str] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if "-" in part:
            a, b = part.split("-", 1)
            try:
                lo, hi = int(a), int(b)
            except ValueError:
                raise DataError(f"performers: {part!r} is not a range like 01-15") from None
            out |= {f"{i:0{len(a)}d}" for i in range(lo, hi + 1)}
        else:
            out.add(part)
    if not out:
        raise DataError("performers: none given")
    return out


def manifest_rows(folder: Path) -> list[dict]:
    path = folder / "MANIFEST.tsv"
    if not path.is_file():
        raise DataError(f"real-face set has no MANIFEST.tsv: {folder}")
    return list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"))


def faces(folder: Path, performers: set[str], prep) -> tuple[np.ndarray, np.ndarray, dict]:
    """48x48 training faces (x, y) of these performers, cut by the device's detector and the
    given FacePrep, the largest face of each picture; and what was read (for the recipe)."""
    from fer_pi.app.config import Config
    from fer_pi.vision.detect import HaarDetector, to_gray

    det = HaarDetector.from_config(Config().detect)
    xs, ys, missed = [], [], 0
    rows = [r for r in manifest_rows(folder) if r["performer"] in performers]
    if not rows:
        raise DataError(f"no pictures of performers {sorted(performers)} in {folder}")
    for r in rows:
        img = cv2.imread(str(folder / r["local_file"]))
        gray = to_gray(img) if img is not None else None
        boxes = det.detect(gray) if gray is not None else []
        if not boxes:
            missed += 1
            continue
        xs.append(prep.crop(gray, max(boxes, key=lambda b: b.w * b.h), (48, 48)))
        ys.append(LABELS.index(r["label"]))
    info = {"dir": portable_path(str(folder)), "performers": sorted(performers), "pictures": len(rows),
            "faces": len(xs), "no_face": missed,
            "manifest_sha256": file_sha256(folder / "MANIFEST.tsv")}
    return np.array(xs, np.uint8), np.array(ys, np.uint8), info

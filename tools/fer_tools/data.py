"""FER2013 splits as numpy arrays, located without copying them into the project."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_pi.core.labels import LABELS

_REPO_ROOT = Path(__file__).resolve().parents[2]


class DataError(Exception):
    """A data folder or split that cannot be used; the message names the path."""


@dataclass(frozen=True)
class Split:
    name: str
    x: np.ndarray  # (N, 48, 48) uint8
    y: np.ndarray  # (N,) uint8 labels in LABELS order
    path: Path

    def __len__(self) -> int:
        return int(self.y.shape[0])


def default_data_dir() -> Path | None:
    """$FER_DATA, else ../shared/data/fer2013 beside the working directory or the checkout."""
    env = os.environ.get("FER_DATA")
    if env:
        return Path(env)
    for base in (Path.cwd(), _REPO_ROOT):
        candidate = base.parent / "shared" / "data" / "fer2013"
        if candidate.is_dir():
            return candidate
    return None


def resolve_data_dir(path: str | os.PathLike | None) -> Path:
    if path is None:
        found = default_data_dir()
        if found is None:
            raise DataError(
                "no FER2013 data folder: pass --data DIR (holding Training.npz and "
                "PublicTest.npz) or set FER_DATA"
            )
        path = found
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"data folder not found: {path}")
    return path


def load_split(data_dir: str | os.PathLike | None, name: str) -> Split:
    """Load one split, checking the keys, shapes and labels it must have."""
    folder = resolve_data_dir(data_dir)
    file = folder / f"{name}.npz"
    if not file.is_file():
        raise DataError(f"split {name!r} not found: {file}")
    try:
        with np.load(file) as npz:
            missing = {"x", "y"} - set(npz.files)
            if missing:
                raise DataError(f"{file}: missing key(s) {sorted(missing)}")
            x, y = npz["x"], npz["y"]
    except (OSError, ValueError) as exc:
        raise DataError(f"{file}: not a readable .npz ({exc})") from None
    if x.ndim != 3 or x.shape[1:] != (48, 48) or x.dtype != np.uint8:
        raise DataError(f"{file}: x must be (N, 48, 48) uint8, got {x.shape} {x.dtype}")
    if y.shape != (x.shape[0],) or (y.size and int(y.max()) >= len(LABELS)):
        raise DataError(f"{file}: y must be (N,) labels 0..{len(LABELS) - 1}")
    return Split(name, x, y.astype(np.uint8), file)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of every file under a folder in sorted order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def stratified_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of about n rows keeping the class proportions: small calibration or smoke sets."""
    if n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        k = max(1, round(n * len(rows) / len(y)))
        picks.append(rng.choice(rows, size=min(k, len(rows)), replace=False))
    idx = np.concatenate(picks)
    rng.shuffle(idx)
    return idx[:n]

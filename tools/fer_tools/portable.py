"""Paths as they may be shipped: a model's metadata, an evaluation's JSON and the
benchmark figures travel to other machines, where this machine's folders mean nothing
(and name its user). A path inside the checkout is written relative to it
('models/fer_seed.keras'), one under the shared data folder as the project's default
layout names it ('../shared/data/realfaces'), anything else by its file name."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def portable_path(text: str, repo: Path = REPO_ROOT) -> str:
    path = PurePosixPath(text)
    if not path.is_absolute():
        return text
    for root, shown in ((repo, None), (repo.parent / "shared", "../shared")):
        try:
            rel = path.relative_to(PurePosixPath(root.as_posix()))
        except ValueError:
            continue
        return str(rel) if shown is None else f"{shown}/{rel}"
    return path.name


def portable(obj: Any, repo: Path = REPO_ROOT) -> Any:
    """``obj`` (JSON-like) with every absolute path in it made portable."""
    if isinstance(obj, dict):
        return {k: portable(v, repo) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [portable(v, repo) for v in obj]
    if isinstance(obj, str) and obj.startswith("/") and "\n" not in obj and " " not in obj:
        return portable_path(obj, repo)
    return obj

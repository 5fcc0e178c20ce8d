"""A file written whole or not at all: a temporary file beside it, renamed into place. A
full disk or a power cut leaves the old file (or none), never an empty or cut one, and no
temporary file behind."""

from __future__ import annotations

import os
from pathlib import Path


def write_whole(path: Path, data: bytes, sync: bool = False) -> None:
    """Raises OSError (the temporary file removed) when it cannot; ``sync``: on the disk
    before the rename (a health file read after a power cut)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise

"""Per-frame, per-face results as JSONL or CSV, flushed every frame.

Each line is complete when written, so a file cut short by a crash or a
signal is still valid up to its last line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

from fer_pi.schema import FrameResult


class OutputError(Exception):
    """An output path that cannot be written; the message names it."""


def frame_record(result: FrameResult) -> dict:
    """The JSONL schema: one object per frame, faces as a list (possibly empty)."""
    faces = []
    for face in result.faces:
        pred = face.prediction
        item = {
            "box": [face.box.x, face.box.y, face.box.w, face.box.h],
            "label": pred.label,
            "confidence": round(pred.confidence, 5),
            "probs": {name: round(p, 5) for name, p in zip(pred.labels, pred.probs, strict=True)},
        }
        if face.track_id is not None:
            item["track_id"] = face.track_id
        if face.smoothed is not None:
            item["smoothed"] = {n: round(p, 5)
                                for n, p in zip(pred.labels, face.smoothed, strict=True)}
        if face.shown is not None:
            item["shown"] = face.shown
            item["held_s"] = round(face.held_s, 3)
        faces.append(item)
    return {
        "frame": result.frame.index,
        "timestamp": round(result.frame.timestamp, 6),
        "detected": result.detected,
        "faces": faces,
    }


class ResultWriter:
    """Writes .jsonl or .csv by the path's suffix."""

    def __init__(self, path: str | Path, labels: tuple[str, ...]):
        self.path = Path(path)
        self.labels = labels
        self.kind = self.path.suffix.lower().lstrip(".")
        if self.kind not in ("jsonl", "csv"):
            raise OutputError(f"output must end in .jsonl or .csv: {self.path}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh: IO[str] = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"cannot write output {self.path}: {exc.strerror or exc}") from None
        self.rows = 0
        if self.kind == "csv":
            self.csv = csv.writer(self.fh)
            self.csv.writerow(["frame", "timestamp", "faces", "face", "track_id", "x", "y", "w",
                               "h", "label", "confidence", "shown",
                               *(f"p_{n}" for n in labels)])

    def write(self, result: FrameResult) -> None:
        if self.kind == "jsonl":
            self.fh.write(json.dumps(frame_record(result), separators=(",", ":")) + "\n")
        else:
            rec = frame_record(result)
            if not rec["faces"]:
                self.csv.writerow([rec["frame"], rec["timestamp"], 0] + [""] * (9 + len(self.labels)))
            for i, f in enumerate(rec["faces"]):
                self.csv.writerow([rec["frame"], rec["timestamp"], len(rec["faces"]), i,
                                   f.get("track_id", ""), *f["box"], f["label"], f["confidence"],
                                   f.get("shown", ""), *(f["probs"][n] for n in self.labels)])
        self.fh.flush()
        self.rows += 1

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()

"""Per-frame, per-face results as JSONL or CSV, flushed every frame.

Each line is complete when written, so a file cut short by a crash or a
signal is still valid up to its last line.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import IO

from fer_pi.schema import FrameResult

log = logging.getLogger(__name__)


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
    """Writes .jsonl or .csv by the path's suffix.

    Each frame's lines are written and flushed at once; if the disk fills or the
    file becomes unwritable, the partial frame is cut off again (so the file stays
    valid to its last line), the error is logged, and the pipeline and board go on.
    """

    def __init__(self, path: str | Path, labels: tuple[str, ...]):
        self.path = Path(path)
        self.labels = labels
        self.kind = self.path.suffix.lower().lstrip(".")
        if self.kind not in ("jsonl", "csv"):
            raise OutputError(f"output must end in .jsonl or .csv: {self.path}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise OutputError(f"cannot write output {self.path}: {exc.strerror or exc}") from None
        self.rows = 0
        self.errors = 0
        if self.kind == "csv":
            self._append(self._csv_text([["frame", "timestamp", "faces", "face", "track_id", "x",
                                          "y", "w", "h", "label", "confidence", "shown",
                                          *(f"p_{n}" for n in labels)]]))

    @staticmethod
    def _csv_text(rows: list[list]) -> str:
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue()

    def _append(self, text: str) -> bool:
        pos = self.fh.tell()
        try:
            self.fh.write(text.encode("utf-8"))
            self.fh.flush()
            return True
        except OSError as exc:
            self.errors += 1
            if self.errors == 1 or self.errors % 100 == 0:
                log.error("cannot write %s (%s); %d frame(s) not written, the board goes on",
                          self.path, exc.strerror or exc, self.errors)
            try:  # drop the partial frame so the file ends on a whole line
                self.fh.seek(pos)
                self.fh.truncate(pos)
            except OSError:
                pass
            return False

    def write(self, result: FrameResult) -> None:
        rec = frame_record(result)
        if self.kind == "jsonl":
            text = json.dumps(rec, separators=(",", ":")) + "\n"
        else:
            rows = []
            if not rec["faces"]:
                rows.append([rec["frame"], rec["timestamp"], 0] + [""] * (9 + len(self.labels)))
            for i, f in enumerate(rec["faces"]):
                rows.append([rec["frame"], rec["timestamp"], len(rec["faces"]), i,
                             f.get("track_id", ""), *f["box"], f["label"], f["confidence"],
                             f.get("shown", ""), *(f["probs"][n] for n in self.labels)])
            text = self._csv_text(rows)
        if self._append(text):
            self.rows += 1

    def close(self) -> None:
        if not self.fh.closed:
            try:
                self.fh.close()
            except OSError as exc:
                log.error("closing %s failed: %s", self.path, exc)

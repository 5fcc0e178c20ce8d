"""Per-frame, per-face results as JSONL or CSV, flushed every frame.

Each line is complete when written, so a file cut short by a crash or a
signal is still valid up to its last line.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from fer_pi.core.records import FrameResult

log = logging.getLogger(__name__)


class OutputError(Exception):
    """An output path that cannot be written; the message names it."""


class NotAppendable(OutputError):
    """An existing file that output.path names but that is not this run's results (another
    program's file, another model's columns): nothing of it is touched, and since no
    restart can mend it, fer-pi exits 2 (bad configuration), which systemd does not
    restart, rather than 5."""


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
            # False: this frame carried the face's last reading (classify.max_hz)
            item["classified"] = face.fresh
        if face.smoothed is not None:
            item["smoothed"] = {n: round(p, 5)
                                for n, p in zip(pred.labels, face.smoothed, strict=True)}
        if face.shown is not None:
            item["shown"] = face.shown
            item["held_s"] = round(face.held_s, 3)
        faces.append(item)
    rec = {
        "frame": result.frame.index,
        "timestamp": round(result.frame.timestamp, 6),
        "detected": result.detected,
        "faces": faces,
    }
    if result.frame.file is not None:
        rec["file"] = result.frame.file  # --images: which picture this record is of
    if result.frame.monotonic is not None:
        # cameras: a clock that NTP does not step, so that durations read back from the
        # file (fer-summary) do not bend when a Pi's wall clock is set after boot. JSONL
        # only: a CSV's columns stay as they were (an appended file must keep its header)
        rec["steady"] = round(result.frame.monotonic, 3)
    return rec


class ResultWriter:
    """Writes .jsonl or .csv by the path's suffix.

    Each frame's lines are written and flushed at once; if the disk fills or the
    file becomes unwritable, the partial frame is cut off again (so the file stays
    valid to its last line), the error is logged, and the pipeline and board go on.

    For an appliance that runs for months: ``interval_s`` keeps one frame's record per
    interval instead of every frame (a face at 30 FPS is about 1 GB of JSONL a day), and
    a path with strftime fields (``results-%Y-%m-%d.jsonl``) starts a new file when the
    formatted name changes. Such a path, or ``append``, appends to an existing file
    instead of replacing it, so a restart loses nothing; a torn last line left by a
    crash is cut off first, so the file stays valid line by line. With ``keep`` only the
    newest ``keep`` files of a strftime path are kept: older ones are deleted as a new one
    starts, so an SD card never fills with old days.
    """

    def __init__(self, path: str | Path, labels: tuple[str, ...], interval_s: float = 0.0,
                 append: bool = False, clock: Callable[[], float] = time.time, keep: int = 0,
                 files: bool = False):
        self.pattern = str(path)
        self.labels, self.interval_s, self.clock, self.keep = labels, interval_s, clock, keep
        self.rolling = "%" in self.pattern
        if keep and not self.rolling:
            raise OutputError(f"keeping the newest {keep} files needs a path with strftime "
                              f"fields: {self.pattern}")
        self.append = append or self.rolling
        self.kind = Path(self.pattern).suffix.lower().lstrip(".")
        if self.kind not in ("jsonl", "csv"):
            raise OutputError(f"output must end in .jsonl or .csv: {self.pattern}")
        # files: a picture folder's run, whose CSV rows end with the picture's file
        self.file_column = files
        self.header = self._csv_text([["frame", "timestamp", "faces", "face", "track_id", "x",
                                       "y", "w", "h", "label", "confidence", "shown",
                                       *(f"p_{n}" for n in labels),
                                       *(["file"] if files else [])]])
        self._needs_header = False
        self.rows = 0
        self.errors = 0
        self.files = 0
        self.deleted = 0
        self._last_t: float | None = None
        self._checked_at = float("-inf")
        self.fh: IO[bytes] | None = None
        self.path = self._name()
        self._open(self.path)  # at start an unwritable path is an error the user must see

    def _name(self) -> Path:
        if not self.rolling:
            return Path(self.pattern)
        return Path(time.strftime(self.pattern, time.localtime(self.clock())))

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # unbuffered: a write that fails must not leave a torn record in a buffer that
            # a later flush (or the seek before truncate) would write after all
            fh = open(path, "ab+" if self.append else "wb+", buffering=0)  # noqa: SIM115
            size = fh.seek(0, 2)
            if size:
                # before anything is cut: a file that is not fer-pi's results (a ledger, a
                # CSV of other columns) is refused untouched
                problem = self._not_ours(fh)
                if problem:
                    fh.close()
                    raise NotAppendable(f"output.path: cannot append to {path}: {problem}; "
                                        "choose another path (nothing of it was changed)")
                _cut_torn_tail(fh, size)
        except OSError as exc:
            raise OutputError(f"cannot write output {path}: {exc.strerror or exc}") from None
        self.fh, self.path = fh, path
        self.files += 1
        if self.kind == "csv" and not fh.tell():
            # on a full disk the header is written with the first rows that fit, never
            # left out (a CSV without it is not readable as results, nor appendable)
            self._needs_header = not self._append(self.header)
        if self.keep:
            self._prune()

    def _prune(self) -> None:
        """Delete all but the newest ``keep`` files of the pattern (never the open one)."""
        older = [p for p in rolled_files(self.pattern) if p != self.path]
        for old in older[:max(0, len(older) - (self.keep - 1))]:
            try:
                old.unlink()
            except OSError as exc:
                log.warning("cannot delete old results %s: %s", old, exc.strerror or exc)
                continue
            self.deleted += 1
            log.info("deleted old results %s (output.keep = %d)", old, self.keep)
            if "%" in str(Path(self.pattern).parent):  # a folder per day: drop it once empty
                try:
                    old.parent.rmdir()
                except OSError:
                    pass

    def _roll(self) -> None:
        """A new file when the formatted name changes (or the last one could not be
        opened); checked at most once a second."""
        now = self.clock()
        if abs(now - self._checked_at) < 1.0:
            return
        self._checked_at = now
        name = self._name()
        if name == self.path and self.fh is not None:
            return
        self.close()
        self.fh = None
        try:
            self._open(name)
        except OutputError as exc:
            if self.errors == 0 or self.errors % 100 == 0:
                log.error("%s; results are not written until it can be opened (retried "
                          "every second)", exc)

    def _not_ours(self, fh: IO[bytes]) -> str:
        """Why an existing file is not fer-pi results of this kind ('' when it is)."""
        fh.seek(0)
        first = fh.readline(1 << 20)
        fh.seek(0, 2)
        if self.kind == "csv":
            if first.decode("utf-8", "replace") == self.header:
                return ""
            return "its columns differ from this run's (another model, or not fer-pi results)"
        try:
            rec = json.loads(first) if first.endswith(b"\n") else None
        except ValueError:
            rec = None
        if first.startswith(b'{"frame":') and not first.endswith(b"\n"):
            return ""  # one torn line of ours: a crash in the first record, cut below
        if not (isinstance(rec, dict) and "frame" in rec and "faces" in rec):
            return "its first line is not a fer-pi results record"
        return ""

    @staticmethod
    def _csv_text(rows: list[list]) -> str:
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue()

    def _append(self, text: str) -> bool:
        """The whole record, or nothing: a disk that fills mid-record (a short write, then
        ENOSPC) has the part that went out cut off again, so the file ends on a whole line."""
        fd = self.fh.fileno()
        data = memoryview(text.encode("utf-8"))
        try:
            pos = os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            return self._failed(exc)
        try:
            while data:
                data = data[os.write(fd, data):]
            return True
        except OSError as exc:
            try:
                os.ftruncate(fd, pos)
            except OSError as cut:
                log.error("cannot cut the partial record from %s (%s)", self.path,
                          cut.strerror or cut)
            return self._failed(exc)

    def _failed(self, exc: OSError) -> bool:
        self.errors += 1
        if self.errors == 1 or self.errors % 100 == 0:
            log.error("cannot write %s (%s); %d frame(s) not written, the board goes on",
                      self.path, exc.strerror or exc, self.errors)
        return False

    def write(self, result: FrameResult) -> None:
        if self.interval_s:
            t = result.frame.steady_t
            if self._last_t is not None and 0 <= t - self._last_t < self.interval_s:
                return
            self._last_t = t
        if self.rolling:
            self._roll()
        if self.fh is None:
            self.errors += 1
            return
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
            if self.file_column:
                rows = [[*row, rec.get("file", "")] for row in rows]
            text = self._csv_text(rows)
            if self._needs_header:
                text = self.header + text
        if self._append(text):
            self.rows += 1
            self._needs_header = False

    def status(self) -> dict:
        """For health, /status and /metrics: is the record being kept?"""
        return {"path": str(self.path), "records": self.rows, "not_written": self.errors}

    def close(self) -> None:
        if self.fh is not None and not self.fh.closed:
            try:
                self.fh.close()
            except OSError as exc:
                log.error("closing %s failed: %s", self.path, exc)


def rolled_files(pattern: str) -> list[Path]:
    """The files a strftime path has named, oldest first by the time read back from their
    names; a file that only looks similar (``results-notes.jsonl``) is not one of them."""
    parts = re.split(r"(%.)", pattern)
    wild = "".join(("*" if part != "%%" else "%") if i % 2 else glob.escape(part)
                   for i, part in enumerate(parts))
    found = []
    for name in glob.glob(wild):
        try:
            when = time.mktime(time.strptime(name, pattern))
        except (ValueError, OverflowError):
            continue
        found.append((when, name))
    return [Path(name) for _, name in sorted(found)]


def _cut_torn_tail(fh: IO[bytes], size: int) -> None:
    """Cut a last line without its newline (a crash mid-write) back to the one before."""
    fh.seek(max(0, size - 1))
    if fh.read(1) == b"\n":
        return
    pos = size
    while pos > 0:
        step = min(pos, 65536)
        fh.seek(pos - step)
        chunk = fh.read(step)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            pos = pos - step + nl + 1
            break
        pos -= step
    fh.truncate(pos)
    log.warning("cut a torn last line from %s (%d bytes)", getattr(fh, "name", "?"), size - pos)
    fh.seek(0, 2)

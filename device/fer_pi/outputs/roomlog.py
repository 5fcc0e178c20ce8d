"""What the room's page shows beyond the health snapshot: the faces now (shown label, how
long it has been held, how long the face has been in view), the shown labels minute by
minute over the last day, and the device's last restarts (fer-pi's own runs, the camera's
losses).

Fed by the loop once a frame, read by the status endpoint's thread: one lock, and work a
frame that does not grow with the hours kept (a Counter per minute, 1,440 of them at most).
Labels and numbers only: nothing here can hold a picture.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path

from fer_pi.core.atomic import write_whole
from fer_pi.core.labels import UNCERTAIN
from fer_pi.core.records import FrameResult

log = logging.getLogger(__name__)

MINUTES_KEPT = 24 * 60  # the page's day of hours
EVENTS_KEPT = 20  # the camera's last losses and returns
RUNS_KEPT = 20  # fer-pi's last starts, in the runs file
FORGET_AFTER_S = 5.0  # a face out of the frame's list this long starts again as new


class RoomLog:
    """The room as the page shows it. ``clock`` is the wall clock (minute buckets, events):
    the page's 'last hour' is the device's, whatever the source's own timestamps."""

    def __init__(self, labels: Sequence[str], clock: Callable[[], float] = time.time):
        self.labels = (*labels, UNCERTAIN)
        self.clock = clock
        self._lock = threading.Lock()
        self._faces: list[dict] = []
        self._seen: dict[int, tuple[float, float]] = {}  # track: first and last timestamp
        self._minutes: deque[tuple[int, int, Counter]] = deque(maxlen=MINUTES_KEPT)
        self._events: deque[dict] = deque(maxlen=EVENTS_KEPT)
        self.runs: list[dict] = []  # set by RunLog.start: this run last

    def on_frame(self, result: FrameResult) -> None:
        ts = result.frame.timestamp
        faces = []
        for face in result.faces:
            seen_s = 0.0
            if face.track_id is not None:
                first, _last = self._seen.get(face.track_id, (ts, ts))
                self._seen[face.track_id] = (first, ts)
                seen_s = max(0.0, ts - first)
            faces.append({"track_id": face.track_id, "label": face.shown_label,
                          "confidence": round(face.shown_confidence, 3),
                          "held_s": round(face.held_s, 1), "seen_s": round(seen_s, 1)})
        for tid in [t for t, (_f, last) in self._seen.items()
                    if not 0.0 <= ts - last <= FORGET_AFTER_S]:
            del self._seen[tid]  # gone a while (or the clip began again)
        minute = int(self.clock() // 60)
        with self._lock:
            self._faces = faces
            if not self._minutes or self._minutes[-1][0] != minute:
                self._minutes.append((minute, 0, Counter()))
            m, frames, counts = self._minutes[-1]
            counts.update(f["label"] for f in faces)
            self._minutes[-1] = (m, frames + 1, counts)

    def clear(self) -> None:
        """No faces now (the camera waits, or the run ended)."""
        with self._lock:
            self._faces = []
        self._seen.clear()

    def note(self, what: str) -> None:
        """An event for the page's restarts list: 'camera lost', 'camera back'."""
        with self._lock:
            self._events.append({"time": round(self.clock(), 1), "what": what})

    def now(self) -> dict:
        """For /status: the faces of the latest frame, the camera's events, fer-pi's runs."""
        with self._lock:
            return {"faces_now": list(self._faces), "events": list(self._events),
                    "runs": list(self.runs)}

    def history(self) -> dict:
        """For /history: face-frames per shown label, per minute for the last hour and per
        hour for the last day, oldest first; periods without frames are left out."""
        now_min = int(self.clock() // 60)
        with self._lock:
            minutes = [(m, n, Counter(c)) for m, n, c in self._minutes]
        hours: dict[int, tuple[int, Counter]] = {}
        last_hour = []
        for m, n, counts in minutes:
            if now_min - m >= MINUTES_KEPT:
                continue
            if now_min - m < 60:
                last_hour.append(_period(m * 60, n, counts))
            frames, total = hours.get(m // 60, (0, Counter()))
            total.update(counts)
            hours[m // 60] = (frames + n, total)
        return {"labels": list(self.labels), "time": round(self.clock(), 1),
                "minutes": last_hour,
                "hours": [_period(h * 3600, n, c) for h, (n, c) in sorted(hours.items())]}


def _period(start: int, frames: int, counts: Counter) -> dict:
    return {"start": start, "frames": frames, "counts": dict(+counts)}


class RunLog:
    """fer-pi's own runs, kept in a small JSON file across restarts (systemd's
    StateDirectory: $STATE_DIRECTORY/runs.json): when each run started and whether it
    stopped cleanly, so the page can say 'restarted at 03:12 after a crash'. A run that
    never wrote its stop ended without one (killed, crashed, the power cut). Written whole
    or not at all; an unreadable file starts a new list, saying so."""

    def __init__(self, path: Path | None, room: RoomLog | None = None,
                 clock: Callable[[], float] = time.time):
        self.path, self.room, self.clock = path, room, clock
        self.runs: list[dict] = []

    def start(self) -> None:
        if self.path is not None:
            self.runs = _read_runs(self.path)
        self.runs = [*self.runs, {"started": round(self.clock(), 1), "stopped": None,
                                  "error": None}]
        self.runs = self.runs[-RUNS_KEPT:]
        self._write()

    def stop(self, error: str | None = None) -> None:
        """``error``: what ended the run, where it was an exception (None: a clean stop)."""
        if self.runs:
            self.runs[-1] = {**self.runs[-1], "stopped": round(self.clock(), 1), "error": error}
            self._write()

    def exit(self, kind, exc, _tb) -> bool:
        """As an ExitStack's exit callback: the stop, with what ended the run; never
        swallows it (False)."""
        self.stop(None if kind is None else f"{kind.__name__}: {exc}"[:200])
        return False

    def _write(self) -> None:
        if self.room is not None:
            self.room.runs = list(self.runs)
        if self.path is None:
            return
        try:
            write_whole(self.path, (json.dumps(self.runs) + "\n").encode())
        except OSError as exc:  # the page loses its history of restarts, the board goes on
            log.error("cannot write %s: %s", self.path, exc.strerror or exc)


def _read_runs(path: Path) -> list[dict]:
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s): the list of restarts starts again", path, exc)
        return []
    if not isinstance(runs, list):
        log.warning("%s is not a list of runs: the list of restarts starts again", path)
        return []
    good = []
    for run in runs:
        if (isinstance(run, dict) and isinstance(run.get("started"), int | float)
                and isinstance(run.get("stopped"), int | float | None)):
            error = run.get("error")
            good.append({"started": run["started"], "stopped": run["stopped"],
                         "error": error if isinstance(error, str) else None})
    return good

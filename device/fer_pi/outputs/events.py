"""From frame results to the few facts worth sending out: a face appeared, its shown
label changed, it left (the room's summary is core.records.room_summary). Pure logic, no
network, so the MQTT publisher and the tests share it.

Only tracked faces make events: without an identity a "change" means nothing. The
label is the one the board shows (smoothed, with hysteresis), so the event stream
flickers no more than the board does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from fer_pi.core.records import FrameResult


@dataclass(frozen=True)
class FaceEvent:
    kind: str  # "new", "change", "update" (at the interval) or "gone"
    track_id: int
    label: str  # the shown label; "uncertain" below the smoother's threshold
    confidence: float  # the shown label's own (smoothed) probability, as the board shows it
    probs: dict[str, float]  # the smoothed probabilities, by label
    frame: int  # index of the source frame
    t: float  # source time, seconds
    time: float  # wall clock, Unix seconds
    previous: str | None = None  # the label before a change

    def to_dict(self) -> dict:
        d = asdict(self)
        d["confidence"] = round(d["confidence"], 4)
        d["probs"] = {k: round(v, 4) for k, v in self.probs.items()}
        d["t"] = round(self.t, 3)
        d["time"] = round(self.time, 3)
        return d


class EventStream:
    """Remembers each track's last label; ``update`` returns the events of one frame."""

    def __init__(self, labels: tuple[str, ...], interval_s: float = 0.0,
                 clock: Callable[[], float] = time.time):
        self.labels, self.interval_s, self.clock = labels, interval_s, clock
        self._last: dict[int, FaceEvent] = {}
        self._next_update = 0.0

    def update(self, result: FrameResult) -> list[FaceEvent]:
        now = self.clock()
        events: list[FaceEvent] = []
        seen: set[int] = set()
        for face in result.faces:
            if face.track_id is None:
                continue
            seen.add(face.track_id)
            probs = face.shown_probs
            label = face.shown_label
            ev = FaceEvent("update", face.track_id, label, face.shown_confidence,
                           dict(zip(self.labels, map(float, probs), strict=True)),
                           result.frame.index, result.frame.timestamp, now)
            before = self._last.get(face.track_id)
            if before is None:
                events.append(replace(ev, kind="new"))
            elif before.label != label:
                events.append(replace(ev, kind="change", previous=before.label))
            self._last[face.track_id] = ev
        for tid in sorted(set(self._last) - seen):
            last = self._last.pop(tid)
            events.append(replace(last, kind="gone", frame=result.frame.index,
                                t=result.frame.timestamp, time=now))
        if self.interval_s and now >= self._next_update:
            self._next_update = now + self.interval_s
            reported = {e.track_id for e in events}
            events.extend(e for tid, e in sorted(self._last.items()) if tid not in reported)
        return events

    def clear(self) -> list[FaceEvent]:
        """Every face still tracked, as ``gone``: for when the camera is lost or the run
        stops, so a listener never keeps a face that nothing will report on again. The
        frame and source time stay those of the face's last sighting."""
        now = self.clock()
        events = [replace(e, kind="gone", time=now, previous=None)
                  for _, e in sorted(self._last.items())]
        self._last.clear()
        return events

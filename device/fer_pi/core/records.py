"""Typed, frozen records passed between the stages (sources, vision, board, outputs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from fer_pi.core.labels import UNCERTAIN


@dataclass(frozen=True)
class Frame:
    """One captured picture. ``image`` is BGR uint8 (H, W, 3), as OpenCV gives it."""

    index: int
    timestamp: float  # seconds: capture time for cameras, position for files
    image: np.ndarray = field(repr=False)
    source: str = ""
    # a smaller grayscale copy made by the camera itself (the Pi camera's lores Y plane):
    # detection runs on it and skips its own conversion and downscaling
    detect_gray: np.ndarray | None = field(default=None, repr=False)
    # cameras: time.monotonic() at capture. A Pi has no battery clock, so its wall clock
    # steps when NTP first syncs after boot (hours or days); how long a label was held
    # and when a card fades must not step with it. None for files (position is steady).
    monotonic: float | None = None
    # a picture's own file (--images): each picture stands alone and its record names it
    file: str | None = None

    @property
    def steady_t(self) -> float:
        """Seconds on a clock that never steps: for durations, never for the record."""
        return self.timestamp if self.monotonic is None else self.monotonic


@dataclass(frozen=True)
class FaceBox:
    """A face in frame pixel coordinates."""

    x: int
    y: int
    w: int
    h: int
    # a learned detector's five points (the face's right eye, left eye, nose tip, right and
    # left mouth corner) as x, y pairs in frame pixels, with which its crop is turned upright;
    # None for Haar's boxes. Not part of a box's identity (two boxes compare by place alone).
    landmarks: tuple[float, ...] | None = field(default=None, compare=False)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def moved_to(self, x: int, y: int, w: int, h: int) -> FaceBox:
        """The same face at another place and size (a tracker's prediction): its landmarks
        move and scale with it, so a predicted face is still turned upright."""
        pts = self.landmarks
        if pts is not None:
            (cx, cy), s = self.center, w / max(1, self.w)
            nx, ny = x + w / 2.0, y + h / 2.0
            pts = tuple(v for i in range(0, len(pts) - 1, 2)
                        for v in (nx + (pts[i] - cx) * s, ny + (pts[i + 1] - cy) * s))
        return FaceBox(x, y, w, h, pts)

    def iou(self, other: FaceBox) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Prediction:
    """Class probabilities for one face, in the model's label order."""

    probs: tuple[float, ...]
    labels: tuple[str, ...]

    @property
    def index(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def label(self) -> str:
        return self.labels[self.index]

    @property
    def confidence(self) -> float:
        return float(self.probs[self.index])


@dataclass(frozen=True)
class Face:
    """A detected, classified face; ``track_id`` and ``shown`` come from tracking/smoothing."""

    box: FaceBox
    prediction: Prediction
    track_id: int | None = None
    smoothed: tuple[float, ...] | None = None
    shown: str | None = None  # label shown on the board; "uncertain" below threshold
    held_s: float = 0.0  # how long the shown label has been held
    # whether the face was classified on this frame (False: its last reading carried, as
    # classify.max_hz spaces a tracked face's readings)
    fresh: bool = True

    @property
    def shown_label(self) -> str:
        """What the board shows: the smoothed label, else this frame's."""
        return self.shown or self.prediction.label

    @property
    def shown_probs(self) -> tuple[float, ...]:
        """The probabilities behind it: smoothed where smoothing ran."""
        return self.smoothed if self.smoothed is not None else self.prediction.probs

    @property
    def shown_confidence(self) -> float:
        """The shown label's own probability (smoothed where smoothing ran), as the board
        shows it; for "uncertain", the leading probability that fell short."""
        probs, labels = self.shown_probs, self.prediction.labels
        label = self.shown_label
        return float(probs[labels.index(label)]) if label in labels else float(max(probs))


@dataclass(frozen=True)
class FrameResult:
    """Everything the board and the outputs need about one frame."""

    frame: Frame
    faces: tuple[Face, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    detected: bool = True  # False where boxes are the tracker's predictions
    # faces found but not shown yet (not confirmed): enough to wake an idle loop
    candidates: int = 0
    # room_summary of the shown faces, computed once where the faces are made: the board,
    # health and MQTT all read this one
    room: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """What a source's read() returns instead of a frame while it waits on purpose (the
    camera closed outside its hours, or lost and being retried), at least once a second:
    the loop hands it to the services (board banner, watchdog, health), so a deliberate
    wait never looks like a hang and no source calls up into the display."""

    message: str  # in English, for logs: "camera lost, retrying in 3 s"
    state: str  # "closed" (outside source.hours) or "retrying"
    opens_at: datetime | None = None  # closed: when the hours begin
    retry_in_s: float = 0.0  # retrying: seconds to the next try


def room_summary(faces: Sequence[Face], labels: tuple[str, ...]) -> dict:
    """Faces per shown label (every label present, zeros included, so that a dashboard's
    series do not vanish) and the most common one ("none" in an empty room)."""
    counts = dict.fromkeys(labels, 0)
    counts[UNCERTAIN] = 0
    for face in faces:
        counts[face.shown_label] = counts.get(face.shown_label, 0) + 1
    ranked = sorted((n, -i, k) for i, (k, n) in enumerate(counts.items()) if k != UNCERTAIN and n)
    return {"faces": len(faces), "dominant": ranked[-1][2] if ranked else "none",
            "counts": counts}

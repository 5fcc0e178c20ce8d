"""Face identities across frames: greedy box association with constant-velocity prediction.

Hand-written rather than a library: the usual trackers (SORT, ByteTrack, OpenCV's
legacy trackers) bring scipy/filterpy or per-face image trackers whose cost on a
Pi is many times that of this, and a handful of faces needs no Hungarian
algorithm. Pure: no camera, no display, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fer_pi.core.records import FaceBox


@dataclass(frozen=True)
class TrackerSettings:
    max_missed: int = 10  # frames a face may go undetected and keep its ID
    min_iou: float = 0.1  # a detection overlapping a prediction this much may match it
    max_distance: float = 1.0  # or centres this close, in units of the track's box width
    velocity_smoothing: float = 0.5  # weight of the newest motion in the velocity estimate


@dataclass(frozen=True)
class Track:
    id: int
    box: FaceBox
    vx: float = 0.0  # pixels per frame
    vy: float = 0.0
    vs: float = 0.0  # size change per frame
    hits: int = 1
    missed: int = 0
    last_frame: int = 0

    def predicted(self, frames_ahead: int = 1) -> FaceBox:
        b = self.box
        # a size that changes is followed for a couple of frames only: a face half hidden
        # shrinks its box for a moment, and extrapolating that over a longer gap would
        # shrink the prediction to nothing and lose the face when it comes out again
        s = max(1.0, b.w + self.vs * min(frames_ahead, 2))
        cx = b.x + b.w / 2 + self.vx * frames_ahead
        cy = b.y + b.h / 2 + self.vy * frames_ahead
        return b.moved_to(round(cx - s / 2), round(cy - s / 2), round(s),
                          round(s * b.h / max(1, b.w)))


def _cost(track_box: FaceBox, det: FaceBox, s: TrackerSettings) -> float | None:
    """Lower is better; None where the two cannot be the same face."""
    iou = track_box.iou(det)
    (tx, ty), (dx, dy) = track_box.center, det.center
    dist = ((tx - dx) ** 2 + (ty - dy) ** 2) ** 0.5 / max(1.0, track_box.w)
    size_ratio = max(det.w, track_box.w) / max(1, min(det.w, track_box.w))
    if size_ratio > 2.0 or (iou < s.min_iou and dist > s.max_distance):
        return None
    return dist - iou


class Tracker:
    """Call ``update`` with each detection frame's boxes, ``predict`` on frames without detection."""

    def __init__(self, settings: TrackerSettings | None = None):
        self.s = settings or TrackerSettings()
        self.tracks: list[Track] = []
        self._next_id = 1  # IDs only grow: an ID is never handed to another face

    def update(self, boxes: list[FaceBox], frame_index: int) -> list[tuple[Track, FaceBox]]:
        """Match detections to tracks; returns (track, detected box) for every detection."""
        gaps = {t.id: max(1, frame_index - t.last_frame) for t in self.tracks}
        pairs = []
        for ti, t in enumerate(self.tracks):
            pred = t.predicted(gaps[t.id])
            for di, d in enumerate(boxes):
                c = _cost(pred, d, self.s)
                if c is not None:
                    pairs.append((c, ti, di))
        pairs.sort()
        used_t, used_d, matched = set(), set(), {}
        for _, ti, di in pairs:
            if ti not in used_t and di not in used_d:
                used_t.add(ti)
                used_d.add(di)
                matched[di] = ti
        out: list[tuple[Track, FaceBox]] = []
        kept: list[Track] = []
        a = self.s.velocity_smoothing
        for ti, t in enumerate(self.tracks):
            if ti in used_t:
                continue
            if gaps[t.id] <= self.s.max_missed:  # frames since it was last detected
                kept.append(replace(t, missed=gaps[t.id]))
        for di, d in enumerate(boxes):
            if di in matched:
                t = self.tracks[matched[di]]
                g = gaps[t.id]
                (px, py), (cx, cy) = t.box.center, d.center
                t = replace(
                    t, box=d, hits=t.hits + 1, missed=0, last_frame=frame_index,
                    vx=(1 - a) * t.vx + a * (cx - px) / g, vy=(1 - a) * t.vy + a * (cy - py) / g,
                    vs=(1 - a) * t.vs + a * (d.w - t.box.w) / g,
                )
            else:
                t = Track(self._next_id, d, last_frame=frame_index)
                self._next_id += 1
            kept.append(t)
            out.append((t, d))
        self.tracks = sorted(kept, key=lambda t: t.id)
        return sorted(out, key=lambda p: p[0].id)

    def predict(self, frame_index: int) -> list[tuple[Track, FaceBox]]:
        """Boxes for a frame without detection: tracks seen at the last detection, moved on."""
        out = []
        for t in self.tracks:
            if t.missed == 0:
                out.append((t, t.predicted(max(1, frame_index - t.last_frame))))
        return out

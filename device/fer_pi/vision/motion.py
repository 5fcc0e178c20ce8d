"""Where a whole-frame scan needs to look: only where the picture changed since the last scan,
away from the faces already followed, with a whole scan every ``full_every_s`` seconds.

Why: the scan looks for *new* faces and is the costliest thing the loop does (on a 640×480
room, about 200 ms of CPU for Haar on this project's x86 host, several times that on a Pi),
yet a new face enters a room by moving into it. A still room costs almost nothing; a face
that came in without moving (or that the scan missed) is found by the next whole scan.

Hand-written on OpenCV's own calls (resize, absdiff, connected components): a background
subtractor (cv2.createBackgroundSubtractorMOG2) learns a model per pixel at full size,
costs more than this, and would call a seated person background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fer_pi.core.records import FaceBox
from fer_pi.vision.detect import to_gray

CELL = 8  # the change map's pixel: 8×8 frame pixels averaged (sensor noise averages out)
THRESHOLD = 14  # a cell changed when its mean moved by this many grey levels
# a changed area larger than this share of the frame is scanned whole (a light switched on,
# the camera knocked): one scan instead of many overlapping ones
WHOLE_SHARE = 0.45
# ... but, while faces are followed, not sooner than this after the last whole scan (a
# large moving picture, as a person close to the camera, would otherwise ask for a whole
# scan every few frames: more than the scans without the gate, which were 6 frames apart
# at 30 FPS); until then that scan is skipped and its change still waits against the same
# reference. In a room where nobody is followed a large change is scanned at once. The gap
# doubles with each such scan, up to full_every_s, and falls back to this when a scan finds
# a face not followed yet: a picture that keeps moving as a whole (a camera panning or
# shaking, a photograph drifting across the frame) and shows nobody new stops costing a
# whole scan every few frames (the one-face clip: a sixth of its frames), while a newcomer
# in it is still found by the whole scan every full_every_s.
WHOLE_GAP_S = 0.2
# around a followed face, in face sizes: to each side, above, below (a body moves with its
# head; a new face there waits for the next whole scan)
PERSON = (1.0, 0.6, 2.5)
Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels


@dataclass
class MotionGate:
    full_every_s: float = 2.0
    min_face: int = 32  # detect.min_size: a region is at least a few faces wide
    _ref: np.ndarray | None = None
    _last_full: float | None = None
    whole: int = 0  # scans planned whole, in regions, and skipped: for fer-bench and tests
    regional: int = 0
    skipped: int = 0
    _gap: float = WHOLE_GAP_S  # now, between whole scans for large changes (see above)

    def plan(self, image: np.ndarray, t: float, known: Sequence[FaceBox]) -> list[Rect] | None:
        """For a scan that is due on this frame: None to scan it whole, [] to skip it, or
        the regions to scan. ``known``: where the faces already followed are now (their
        motion is theirs; they are found again near themselves)."""
        h, w = image.shape[:2]
        small = _cells(image)
        ref, self._ref = self._ref, small
        if (ref is None or ref.shape != small.shape or self._last_full is None
                or t < self._last_full or t - self._last_full >= self.full_every_s - 1e-6):
            return self._whole(t)
        changed = (cv2.absdiff(small, ref) >= THRESHOLD).astype(np.uint8)
        for b in known:  # a followed person's own motion: the head, shoulders and chest
            x0, y0 = max(0, int((b.x - PERSON[0] * b.w) // CELL)), \
                max(0, int((b.y - PERSON[1] * b.h) // CELL))
            x1 = int((b.x + (1 + PERSON[0]) * b.w) // CELL) + 1
            y1 = int((b.y + (1 + PERSON[2]) * b.h) // CELL) + 1
            changed[y0:y1, x0:x1] = 0
        if not changed.any():
            return self._skip(ref)
        changed = cv2.dilate(changed, np.ones((3, 3), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
        pad = 1.5 * self.min_face
        rects = []
        for x, y, cw, ch, _area in stats[1:n]:
            x0, y0 = x * CELL - pad, y * CELL - pad
            x1, y1 = (x + cw) * CELL + pad, (y + ch) * CELL + pad
            rects.append((max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))))
        rects = merged(rects)
        if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in rects) > WHOLE_SHARE * w * h:
            if not known:
                self._gap = WHOLE_GAP_S
            elif t - self._last_full < self._gap - 1e-6:
                return self._skip(ref)
            else:
                self._gap = min(2 * self._gap, self.full_every_s)
            return self._whole(t)
        self.regional += 1
        return rects

    def newcomer(self) -> None:
        """A scan found a face not followed before: large changes are scanned soon again."""
        self._gap = WHOLE_GAP_S

    def _whole(self, t: float) -> None:
        self._last_full = t
        self.whole += 1
        return None

    def _skip(self, ref: np.ndarray) -> list[Rect]:
        self._ref = ref  # nothing scanned: a slow change still adds up against the old one
        self.skipped += 1
        return []


def _cells(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // CELL), max(1, h // CELL)),
                       interpolation=cv2.INTER_AREA)
    return to_gray(small)


def merged(rects: list[Rect]) -> list[Rect]:
    """Overlapping regions as one (a face is not cut by a region's edge and scanned twice)."""
    out = list(rects)
    joined = True
    while joined:
        joined = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                              max(a[3], b[3]))
                    del out[j]
                    joined = True
                    break
            if joined:
                break
    return out

"""Finding the faces of a room, frame after frame, at camera rate.

A whole-frame scan is the costliest thing the Pi does, so it runs only every
``scan_every`` frames (on a thread of its own for a live camera, so a slow scan never
stalls the board); in between, each face already known is found again in a small window
around where it should be (the detector's ``detect_near``; Haar's or YuNet's). A face the scan finds for the
first time is a candidate: a second cascade must see a face there too, and it must be
found again in ``confirm_frames`` frames before it is shown, so a false face seen once
never reaches the board, the results or MQTT. With a motion gate (detect.full_scan_s) a
scan looks only where the picture changed, and the whole frame every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from fer_pi.core.records import FaceBox
from fer_pi.vision.detect import NEAR_REACH, Detector, HaarDetector, shrunk
from fer_pi.vision.motion import MotionGate, Rect
from fer_pi.vision.track import Track, Tracker

log = logging.getLogger(__name__)


class ScanWorker:
    """The whole-frame scan on its own thread: the newest frame handed to it is scanned
    (an older one still waiting is dropped, as a camera's queue of one); the loop picks the
    result up when it is ready and never waits for it. OpenCV releases the GIL while it
    scans, so the scan runs on the second core."""

    def __init__(self, detector: Detector):
        self.detector = detector.clone()  # the loop keeps using its own for detect_near
        self._cond = threading.Condition()
        self._job: tuple[np.ndarray, np.ndarray | None, int, list[Rect] | None] | None = None
        self._result: tuple[int, list[FaceBox]] | None = None
        self._busy = False
        self._stop = False
        self.scans = 0
        self._thread = threading.Thread(target=self._work, name="face-scan", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._busy and self._job is None

    def submit(self, gray: np.ndarray, small: np.ndarray | None, index: int,
               regions: list[Rect] | None = None) -> None:
        with self._cond:
            self._job = (gray, small, index, regions)
            self._cond.notify()

    def poll(self) -> tuple[int, list[FaceBox]] | None:
        with self._cond:
            result, self._result = self._result, None
            return result

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                gray, small, index, regions = self._job
                self._job, self._busy = None, True
            try:
                boxes = scan(self.detector, gray, small, regions)
            except Exception:  # noqa: BLE001 - a failed scan must not end the loop's faces
                log.exception("face scan failed")
                boxes = []
            with self._cond:
                self._result, self._busy = (index, boxes), False
                self.scans += 1

    def close(self, timeout_s: float = 2.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def scan(detector: Detector, gray: np.ndarray, small: np.ndarray | None = None,
         regions: list[Rect] | None = None) -> list[FaceBox]:
    """A whole-frame scan, or one of ``regions`` only (a motion gate's: at the scale the
    whole frame is scanned at, so a face is found alike in either); ``small`` is the
    camera's own small copy (the Pi's lores plane)."""
    if regions is None:
        if small is not None:
            return detector.detect_scaled(small, small.shape[1] / gray.shape[1])
        return detector.detect(gray)
    scale = small.shape[1] / gray.shape[1] if small is not None else \
        detector.scale_for(gray.shape[1])
    found: list[FaceBox] = []
    for x0, y0, x1, y1 in regions:
        if small is not None:
            sx0, sy0 = round(x0 * scale), round(y0 * scale)
            part = small[sy0:round(y1 * scale), sx0:round(x1 * scale)]
            dx, dy = sx0 / scale, sy0 / scale
        else:
            part, dx, dy = shrunk(gray[y0:y1, x0:x1], scale), x0, y0
        if min(part.shape[:2]) < 2:
            continue
        for b in detector.detect_scaled(part, scale):
            b = b.moved_to(round(b.x + dx), round(b.y + dy), b.w, b.h)
            if not _overlaps(b, found):
                found.append(b)
    found.sort(key=lambda b: b.w * b.h, reverse=True)
    return found[:detector.max_faces]


def verified(verifier: HaarDetector, gray: np.ndarray, box: FaceBox) -> bool:
    """A second cascade sees a face there too. The two cascades rarely share false faces
    (on composed scenes it kept 446 of 447 true faces and 3 of 11 false ones)."""
    return verifier.detect_near(gray, box, reach=0.3, min_neighbors=3) is not None


def from_stale_scan(found: list[FaceBox], tracks: list[Track], index: int) -> list[FaceBox]:
    """A scan that ended on its thread saw the room some frames ago. Its box near one track
    or none is used as it is; where two faces cross, its box may be where the other one is
    now and would swap their IDs: that box is dropped (each is looked for near itself)."""
    out: list[FaceBox] = []
    for box in found:
        cx, cy = box.center
        close = 0
        for t in tracks:
            p = t.predicted(max(1, index - t.last_frame))
            px, py = p.center
            close += abs(px - cx) < max(p.w, box.w) and abs(py - cy) < max(p.h, box.h)
        if close <= 1:
            out.append(box)
    return out


def _predicted(skipped: list[Track], matched: set[int], tracks: list[Track],
               index: int) -> list[tuple[Track, FaceBox]]:
    """Where the confirmed faces not looked for on this frame are now, as the tracker's
    predict() would say (a frame that looked only for new faces must not drop the others:
    before, every such frame lost every known face for a frame)."""
    seen = {t.id for t in skipped if t.missed == 0} - matched
    return [(t, t.predicted(max(1, index - t.last_frame))) for t in tracks if t.id in seen]


def _close(a: FaceBox, b: FaceBox, reach: float = NEAR_REACH) -> bool:
    """Whether ``b`` reaches into the window ``a`` is looked for in (``reach`` of its size
    around it)."""
    side = max(a.w, a.h)
    (ax, ay), (bx, by) = a.center, b.center
    return (abs(ax - bx) < (0.5 + reach) * side + b.w / 2
            and abs(ay - by) < (0.5 + reach) * side + b.h / 2)


def _overlaps(box: FaceBox, others: list[FaceBox]) -> bool:
    return any(box.iou(o) > 0.4 for o in others)


class FaceFinder:
    """Scans, finds known faces again, confirms new ones; keeps the tracker's identities."""

    def __init__(self, detector: Detector, tracker: Tracker,
                 verifier: HaarDetector | None = None, scan_every: int = 6,
                 detect_every: int = 1, confirm_frames: int = 3, threaded: bool = False,
                 gate: MotionGate | None = None):
        self.detector, self.tracker, self.verifier = detector, tracker, verifier
        self.scan_every, self.detect_every = max(1, scan_every), max(1, detect_every)
        self.confirm_frames = max(1, confirm_frames)
        self.worker = ScanWorker(detector) if threaded else None
        self.gate = gate
        self._count = 0
        self._confirmed: set[int] = set()
        self._verified: set[int] = set()
        self.last_ms: dict[str, float] = {}  # the last find's time: detect, track
        self.candidates = 0  # tracks of the last frame waiting to be confirmed
        self._pending: tuple[int, list[FaceBox]] | None = None  # a scan's, until it is used

    def find(self, gray: np.ndarray, index: int, small: np.ndarray | None = None,
             at_s: float | None = None) -> tuple[list[tuple[Track, FaceBox]], bool]:
        """The confirmed faces of this frame as (track, box), and whether any detector
        looked at this frame (False: the boxes are the tracker's predictions). ``gray`` is
        the picture the detector wants: gray for Haar, the colour frame for YuNet; ``at_s``
        the frame's time (the motion gate's whole scans are so many seconds apart)."""
        t0 = time.perf_counter()
        n = self._count
        self._count += 1
        tr = self.tracker
        scan_due = n % self.scan_every == 0 or not tr.tracks
        found: list[FaceBox] = []
        # known faces are found again every detect_every frames; a new one every frame until
        # it is confirmed, so it is shown after confirm_frames frames, not that many refinds
        refind = n % self.detect_every == 0
        stale = False
        regions: list[Rect] | None = None
        if scan_due and self.gate is not None and (self.worker is None or self.worker.idle):
            known = [k.predicted(max(1, index - k.last_frame)) for k in tr.tracks
                     if k.missed == 0]
            regions = self.gate.plan(gray, index if at_s is None else at_s, known)
            scan_due = regions != []
        if self.worker is None:
            if scan_due:
                found = scan(self.detector, gray, small, regions)
        else:
            done = self.worker.poll()
            if done is not None:
                self._pending = done
            # a finished scan is used on a frame where every known face is looked for too:
            # on another, the faces it did not see again would miss a frame
            if self._pending is not None and (refind or not tr.tracks):
                (scanned, found), self._pending = self._pending, None
                stale = scanned != index
            if scan_due and self.worker.idle:
                self.worker.submit(gray, small, index, regions)
        near: list[FaceBox] = []
        skipped = [] if refind else [t for t in tr.tracks if t.id in self._confirmed]
        looked = [k for k, t in enumerate(tr.tracks) if refind or t.id not in self._confirmed]
        expected = [t.predicted(max(1, index - t.last_frame)) for t in tr.tracks] if looked else []
        for k in looked:
            # a face alone is looked for near where it should be first; beside another one,
            # in the whole window at once (a small window's edge can cut a face and hand one
            # face's box to the other)
            alone = not any(_close(expected[k], e) for j, e in enumerate(expected) if j != k)
            box = self.detector.detect_near(gray, expected[k], first=alone)
            if box is not None and not _overlaps(box, near):
                near.append(box)
        if stale:
            found = from_stale_scan(found, tr.tracks, index)
        refind = refind or bool(near)
        t1 = time.perf_counter()
        if not refind and not found:
            pairs = tr.predict(index)
        else:
            before = {k.id for k in tr.tracks}
            pairs = tr.update(near + [b for b in found if not _overlaps(b, near)], index)
            if self.gate is not None and any(k.id not in before for k, _ in pairs):
                self.gate.newcomer()
            if skipped:  # only new faces were looked for: the known ones move on as predicted
                pairs += _predicted(skipped, {t.id for t, _ in pairs}, tr.tracks, index)
        shown = self._shown(pairs, gray)
        self.last_ms = {"detect": (t1 - t0) * 1e3, "track": (time.perf_counter() - t1) * 1e3}
        return shown, refind or bool(found)

    def _shown(self, pairs: list[tuple[Track, FaceBox]], gray: np.ndarray):
        """Only confirmed tracks; a new track the verifier does not see is dropped at once."""
        out, drop = [], set()
        for t, box in pairs:
            if t.id in self._confirmed:
                out.append((t, box))
                continue
            if t.id not in self._verified:
                if self.verifier is not None and not verified(self.verifier, gray, box):
                    drop.add(t.id)
                    continue
                self._verified.add(t.id)
            if t.hits >= self.confirm_frames:
                self._confirmed.add(t.id)
                out.append((t, box))
        if drop:
            self.tracker.tracks = [t for t in self.tracker.tracks if t.id not in drop]
        if len(out) > self.detector.max_faces:  # detect.max_faces: the largest, as a scan does
            keep = sorted(out, key=lambda p: p[1].w * p[1].h, reverse=True)[:self.detector.max_faces]
            out = [p for p in out if p in keep]
        live = {t.id for t in self.tracker.tracks}
        self.candidates = len(live - self._confirmed)
        self._confirmed &= live
        self._verified &= live
        return out

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

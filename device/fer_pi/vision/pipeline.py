"""The pipeline: frame → faces → crops → predictions, and the loop that drives it."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from fer_pi.app.config import Config
from fer_pi.sources import FrameSource
from fer_pi.vision.classify import Classifier
from fer_pi.vision.detect import HaarDetector, to_gray
from fer_pi.vision.find import FaceFinder, scan, verified
from fer_pi.vision.prepare import FacePrep
from fer_pi.vision.schema import Face, Frame, FrameResult
from fer_pi.vision.smooth import Smoother
from fer_pi.vision.track import Tracker, TrackerSettings

log = logging.getLogger(__name__)


class Pipeline:
    """Find faces, crop, classify, smooth.

    With a tracker, faces are found by a FaceFinder (a whole-frame scan every few frames,
    each known face found again near where it was in between, new faces confirmed before
    they are shown); without one, every frame is scanned and stands alone.
    """

    def __init__(self, detector: HaarDetector, classifier: Classifier,
                 prep: FacePrep | None = None, tracker: Tracker | None = None,
                 smoother: Smoother | None = None, detect_every: int = 1,
                 finder: FaceFinder | None = None, verifier: HaarDetector | None = None):
        # the model's own preparation unless the caller gives one (a setting overrode it)
        self.detector, self.classifier = detector, classifier
        self.prep = prep if prep is not None else classifier.info.face
        self.tracker, self.smoother, self.verifier = tracker, smoother, verifier
        if tracker is not None and finder is None:
            finder = FaceFinder(detector, tracker, verifier, scan_every=detect_every,
                                detect_every=detect_every, confirm_frames=1)
        self.finder = finder

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        gray = to_gray(frame.image)
        ids: list[int | None]
        if self.finder is not None:
            pairs, detected = self.finder.find(gray, frame.index, frame.detect_gray)
            ids, boxes = [t.id for t, _ in pairs], [b for _, b in pairs]
        else:
            detected = True
            boxes = scan(self.detector, gray, frame.detect_gray)
            if self.verifier is not None:
                boxes = [b for b in boxes if verified(self.verifier, gray, b)]
            ids = [None] * len(boxes)
        t1 = t2 = time.perf_counter()
        crops = [self.prep.crop(gray, b, self.classifier.input_size) for b in boxes]
        t3 = time.perf_counter()
        preds = self.classifier.classify(crops)
        t4 = time.perf_counter()
        faces = []
        for box, pred, tid in zip(boxes, preds, ids, strict=True):
            if self.smoother is not None and tid is not None:
                sm = self.smoother.update(tid, pred.probs, frame.steady_t)
                faces.append(Face(box, pred, tid, sm.probs, sm.shown, sm.held_s))
            else:
                faces.append(Face(box, pred, tid))
        if self.smoother is not None and self.tracker is not None and detected:
            self.smoother.forget({t.id for t in self.tracker.tracks})
        t5 = time.perf_counter()
        timings = {"detect": (t1 - t0) * 1e3, "preprocess": (t3 - t2) * 1e3,
                   "infer": (t4 - t3) * 1e3}
        if self.finder is not None:  # its scans and refinds, then the tracker's matching
            timings.update(self.finder.last_ms)
        if self.smoother is not None:
            timings["smooth"] = (t5 - t4) * 1e3
        return FrameResult(frame, tuple(faces), timings, detected=detected,
                           candidates=self.finder.candidates if self.finder else 0)

    def close(self) -> None:
        """Stop the scan thread, if there is one."""
        if self.finder is not None:
            self.finder.close()


@dataclass
class RunStats:
    """Rolling figures for the overlay and health; whole-run counts for the summary."""

    frames: int = 0
    faces: int = 0
    window: int = 60
    recent: dict[str, deque] = field(default_factory=dict)
    stamps: deque = field(default_factory=lambda: deque(maxlen=61))

    def add(self, timings: dict[str, float], n_faces: int) -> None:
        self.frames += 1
        self.faces += n_faces
        self.stamps.append(time.perf_counter())
        for k, v in timings.items():
            self.recent.setdefault(k, deque(maxlen=self.window)).append(v)

    @property
    def fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(1e-9, self.stamps[-1] - self.stamps[0])

    def mean_ms(self) -> dict[str, float]:
        return {k: sum(v) / len(v) for k, v in self.recent.items() if v}


Sink = Callable[[FrameResult], None]
# a display returns False when the user asked to quit; it adds its own "draw" time
Show = Callable[[FrameResult, RunStats], bool]
# called once a frame is fully done (shown): watchdog pings, health files
After = Callable[[FrameResult, RunStats], None]


def run(source: FrameSource, pipeline: Pipeline, sinks: Sequence[Sink] = (),
        show: Show | None = None, stop: threading.Event | None = None,
        max_frames: int = 0, after: Sequence[After] = (),
        pace: Callable[[FrameResult], float] | None = None,
        stats: RunStats | None = None) -> RunStats:
    """Drive frames through the pipeline until the source ends, ``stop`` is set,
    the display quits or ``max_frames`` have been processed. ``pace`` (idle.IdlePacer)
    returns how long to wait before the next frame is read. ``stats``: the caller's, to
    read while the run goes on (a wait's banner, health)."""
    stop = stop or threading.Event()
    stats = stats if stats is not None else RunStats()
    while not stop.is_set():
        t0 = time.perf_counter()
        frame = source.read()
        if frame is None:
            break
        t1 = time.perf_counter()
        result = pipeline.process(frame)
        result.timings_ms["capture"] = (t1 - t0) * 1e3
        for sink in sinks:
            sink(result)
        if show is not None:
            t2 = time.perf_counter()
            keep_going = show(result, stats)
            result.timings_ms["draw"] = (time.perf_counter() - t2) * 1e3
            if not keep_going:
                stop.set()
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
        stats.add(result.timings_ms, len(result.faces))
        for hook in after:
            hook(result, stats)
        if max_frames and stats.frames >= max_frames:
            break
        if pace is not None:
            wait = pace(result)
            if wait > 0:
                stop.wait(wait)
    return stats


def build(cfg: Config, classifier: Classifier | None = None, live: bool = False) -> Pipeline:
    """The pipeline the settings describe; the caller may pass a classifier it already built.
    ``live``: frames come from a camera (detect.scan_thread 'auto' then scans on a thread)."""
    from fer_pi.vision.modelfile import resolve_model

    d = cfg.detect
    detector = HaarDetector.from_config(d)
    verifier = HaarDetector.from_config(replace(d, cascade=VERIFIER[d.cascade]))
    if classifier is None:
        classifier = Classifier(resolve_model(cfg.model.path), threads=cfg.model.threads,
                                flip_tta=cfg.model.flip_tta)
    tracker = smoother = finder = None
    if cfg.track.enabled:
        t = cfg.track
        tracker = Tracker(TrackerSettings(max_missed=t.max_missed, max_distance=t.max_distance))
        threaded = d.scan_thread == "on" or (d.scan_thread == "auto" and live)
        finder = FaceFinder(detector, tracker, verifier, scan_every=d.scan_every,
                            detect_every=t.detect_every, confirm_frames=d.confirm_frames,
                            threaded=threaded)
        if cfg.smooth.enabled:
            smoother = Smoother(classifier.info.labels, cfg.smooth.settings())
    return Pipeline(detector, classifier, face_prep(cfg, classifier), tracker, smoother,
                    finder=finder, verifier=verifier)


# each scanning cascade is checked by the other: they rarely share a false face
VERIFIER = {"frontalface_alt2": "frontalface_default", "frontalface_default": "frontalface_alt2"}


def face_prep(cfg: Config, classifier: Classifier) -> FacePrep:
    """The model's face preparation, with whatever the settings override."""
    d = cfg.detect
    return classifier.info.face.with_overrides(
        margin=None if d.margin < 0 else d.margin,
        equalize=None if d.equalize == "model" else d.equalize == "on")

"""The pipeline: frame → faces → crops → predictions, and the loop that drives it."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fer_pi.camera import FrameSource
from fer_pi.classify import Classifier
from fer_pi.detect import HaarDetector, to_gray
from fer_pi.preprocess import crop_face
from fer_pi.schema import Face, Frame, FrameResult

log = logging.getLogger(__name__)
STAGES = ("capture", "detect", "preprocess", "infer", "draw", "total")


class Pipeline:
    """Stateless per frame: detect, crop, classify; the timings ride along in the result."""

    def __init__(self, detector: HaarDetector, classifier: Classifier, margin: float = 0.1):
        self.detector, self.classifier, self.margin = detector, classifier, margin

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        gray = to_gray(frame.image)
        boxes = self.detector.detect(gray)
        t1 = time.perf_counter()
        crops = [crop_face(gray, b, self.classifier.input_size, self.margin) for b in boxes]
        t2 = time.perf_counter()
        preds = self.classifier.classify(crops)
        t3 = time.perf_counter()
        faces = tuple(Face(b, p) for b, p in zip(boxes, preds, strict=True))
        return FrameResult(frame, faces, {"detect": (t1 - t0) * 1e3,
                                          "preprocess": (t2 - t1) * 1e3,
                                          "infer": (t3 - t2) * 1e3})


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


def run(source: FrameSource, pipeline: Pipeline, sinks: Sequence[Sink] = (),
        show: Show | None = None, stop: threading.Event | None = None,
        max_frames: int = 0) -> RunStats:
    """Drive frames through the pipeline until the source ends, ``stop`` is set,
    the display quits or ``max_frames`` have been processed."""
    stop = stop or threading.Event()
    stats = RunStats()
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
        if max_frames and stats.frames >= max_frames:
            break
    return stats

"""The vision stage as one call: frame → faces → crops → predictions → smoothed labels.

The loop that drives it and the assembly from settings are the App's (app.loop, app.assemble).
"""

from __future__ import annotations

import time

from fer_pi.core.records import Face, Frame, FrameResult, Prediction, room_summary
from fer_pi.vision.classify import Classifier
from fer_pi.vision.detect import Detector, HaarDetector, to_gray
from fer_pi.vision.find import FaceFinder, scan, verified
from fer_pi.vision.prepare import FacePrep
from fer_pi.vision.schedule import ClassifySchedule
from fer_pi.vision.smooth import Smoother
from fer_pi.vision.track import Tracker


class Pipeline:
    """Find faces, crop, classify, smooth.

    With a tracker, faces are found by a FaceFinder (a whole-frame scan every few frames,
    each known face found again near where it was in between, new faces confirmed before
    they are shown); without one, every frame is scanned and stands alone. With a
    ``schedule``, a tracked face is classified only when it is due (classify.max_hz) and
    carries its last reading in between.
    """

    def __init__(self, detector: Detector, classifier: Classifier,
                 prep: FacePrep | None = None, tracker: Tracker | None = None,
                 smoother: Smoother | None = None, detect_every: int = 1,
                 finder: FaceFinder | None = None, verifier: HaarDetector | None = None,
                 schedule: ClassifySchedule | None = None):
        # the model's own preparation unless the caller gives one (a setting overrode it)
        self.detector, self.classifier = detector, classifier
        self.prep = prep if prep is not None else classifier.info.face
        self.tracker, self.smoother, self.verifier = tracker, smoother, verifier
        if tracker is not None and finder is None:
            finder = FaceFinder(detector, tracker, verifier, scan_every=detect_every,
                                detect_every=detect_every, confirm_frames=1)
        self.finder = finder
        self.schedule = schedule
        self._read: dict[int, Prediction] = {}  # each tracked face's last reading
        self.inferences = 0  # faces classified (a face and its mirror count once)

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        gray = to_gray(frame.image)
        # YuNet looks at the colour frame (the camera's small gray copy is Haar's)
        seen, small = (frame.image, None) if self.detector.color else (gray, frame.detect_gray)
        ids: list[int | None]
        if self.finder is not None:
            pairs, detected = self.finder.find(seen, frame.index, small, frame.steady_t)
            ids, boxes = [t.id for t, _ in pairs], [b for _, b in pairs]
        else:
            detected = True
            boxes = scan(self.detector, seen, small)
            if self.verifier is not None:
                boxes = [b for b in boxes if verified(self.verifier, seen, b)]
            ids = [None] * len(boxes)
        t1 = time.perf_counter()
        t = frame.steady_t
        due = (self.schedule.due(ids, t) if self.schedule is not None and self.tracker
               else [True] * len(boxes))
        due = [d or tid not in self._read for d, tid in zip(due, ids, strict=True)]
        crops = [self.prep.crop(gray, b, self.classifier.input_size)
                 for b, d in zip(boxes, due, strict=True) if d]
        t3 = time.perf_counter()
        fresh = iter(self.classifier.classify(crops))
        self.inferences += len(crops)
        t4 = time.perf_counter()
        faces = []
        for box, tid, d in zip(boxes, ids, due, strict=True):
            pred = next(fresh) if d else self._read[tid]
            if tid is not None:
                self._read[tid] = pred
                if d and self.schedule is not None:
                    self.schedule.read(tid, t)
            sm = None
            if self.smoother is not None and tid is not None:
                sm = self.smoother.update(tid, pred.probs, t) if d else \
                    self.smoother.current(tid, t)
            if sm is not None:
                faces.append(Face(box, pred, tid, sm.probs, sm.shown, sm.held_s, fresh=d))
            else:
                faces.append(Face(box, pred, tid, fresh=d))
        if self.tracker is not None and detected:
            live = {tr.id for tr in self.tracker.tracks}
            if self.smoother is not None:
                self.smoother.forget(live)
            if self.schedule is not None:
                self.schedule.forget(live)
            for gone in [k for k in self._read if k not in live]:
                del self._read[gone]
        t5 = time.perf_counter()
        timings = {"detect": (t1 - t0) * 1e3, "preprocess": (t3 - t1) * 1e3,
                   "infer": (t4 - t3) * 1e3}
        if self.finder is not None:  # its scans and refinds, then the tracker's matching
            timings.update(self.finder.last_ms)
        if self.smoother is not None:
            timings["smooth"] = (t5 - t4) * 1e3
        return FrameResult(frame, tuple(faces), timings, detected=detected,
                           candidates=self.finder.candidates if self.finder else 0,
                           room=room_summary(faces, self.classifier.info.labels))

    def close(self) -> None:
        """Stop the scan thread, if there is one."""
        if self.finder is not None:
            self.finder.close()

"""The pipeline the settings describe: detectors, classifier, face preparation, tracker,
finder and smoother built from one Config."""

from __future__ import annotations

from dataclasses import replace

from fer_pi.app.config import Config
from fer_pi.vision.classify import Classifier
from fer_pi.vision.detect import HaarDetector, make_detector
from fer_pi.vision.find import FaceFinder
from fer_pi.vision.modelfile import resolve_model
from fer_pi.vision.motion import MotionGate
from fer_pi.vision.pipeline import Pipeline
from fer_pi.vision.prepare import FacePrep
from fer_pi.vision.schedule import ClassifySchedule
from fer_pi.vision.smooth import Smoother
from fer_pi.vision.track import Tracker, TrackerSettings


def still_config(cfg: Config) -> Config:
    """The settings for unrelated pictures (--images, fer_pi.analyze): each picture stands
    alone, scanned whole, its faces shown at once with their own label (no track carried
    from one picture into the next, so no smoothing across them, no second sighting)."""
    return replace(cfg, track=replace(cfg.track, enabled=False),
                   detect=replace(cfg.detect, scan_every=1, confirm_frames=1))


def build(cfg: Config, classifier: Classifier | None = None, live: bool = False) -> Pipeline:
    """The pipeline the settings describe; the caller may pass a classifier it already built.
    ``live``: frames come from a camera (detect.scan_thread 'auto' then scans on a thread)."""
    d = cfg.detect
    detector = make_detector(d, still=not cfg.track.enabled)
    verifier = None
    if d.verify == "on" or (d.verify == "auto" and d.detector == "haar"):
        verifier = HaarDetector.from_config(replace(d, cascade=VERIFIER[d.cascade]))
    if classifier is None:
        classifier = Classifier(resolve_model(cfg.model.path), threads=cfg.model.threads,
                                flip_tta=cfg.model.flip_tta)
    tracker = smoother = finder = schedule = None
    if cfg.track.enabled:
        t = cfg.track
        tracker = Tracker(TrackerSettings(max_missed=t.max_missed, max_distance=t.max_distance))
        threaded = d.scan_thread == "on" or (d.scan_thread == "auto" and live)
        finder = FaceFinder(detector, tracker, verifier, scan_every=d.scan_every,
                            detect_every=t.detect_every, confirm_frames=d.confirm_frames,
                            threaded=threaded,
                            gate=MotionGate(d.full_scan_s, d.min_size) if d.full_scan_s > 0
                            else None)
        if cfg.smooth.enabled:
            smoother = Smoother(classifier.info.labels, cfg.smooth.settings())
        if cfg.classify.max_hz > 0:
            schedule = ClassifySchedule(cfg.classify.max_hz)
    return Pipeline(detector, classifier, face_prep(cfg, classifier), tracker, smoother,
                    finder=finder, verifier=verifier, schedule=schedule)


# each scanning cascade is checked by the other: they rarely share a false face
VERIFIER = {"frontalface_alt2": "frontalface_default", "frontalface_default": "frontalface_alt2"}


def face_prep(cfg: Config, classifier: Classifier) -> FacePrep:
    """The model's face preparation, with whatever the settings override."""
    d = cfg.detect
    return classifier.info.face.with_overrides(
        margin=None if d.margin < 0 else d.margin,
        equalize=None if d.equalize == "model" else d.equalize == "on")

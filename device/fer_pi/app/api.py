"""fer-pi as a library: one call for a picture, through the device's own detector, crop
and model, with the settings the config file has.

    >>> import cv2, fer_pi
    >>> faces = fer_pi.analyze(cv2.imread("photo.jpg"))          # BGR, as OpenCV reads it
    >>> faces[0].label, faces[0].confidence, faces[0].box
    ('happy', 0.83, (212, 96, 131, 131))
    >>> with fer_pi.Analyzer(model={"path": "seed"}, detect={"min_size": 48}) as fer:
    ...     for path in paths:                                   # the model loaded once
    ...         print(path, fer.analyze(path))

A picture is analysed as ``fer-pi --images`` analyses it (each picture alone, scanned
whole, no tracking or smoothing), so the labels are the ones its results file gives.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_pi.app.assemble import build, still_config
from fer_pi.app.config import Config, from_dict
from fer_pi.core.records import Frame
from fer_pi.sources.files import read_image, to_frame_image
from fer_pi.vision.align import points


class AnalyzeError(ValueError):
    """A picture that cannot be analysed (not an image array, an unreadable file); the
    message names it. Bad settings raise app.config's ConfigError (naming the key), a bad
    model vision.modelfile's ModelError (naming the file)."""


@dataclass(frozen=True)
class FaceAnalysis:
    """One face of a picture."""

    box: tuple[int, int, int, int]  # x, y, width, height in the picture's pixels
    label: str  # the most probable of the model's labels
    confidence: float  # its probability (calibrated: 0.7 is right about 70 % of the time)
    probabilities: dict[str, float]  # every label's, in the model's order
    # eyes, nose tip, mouth corners as (x, y), where the detector finds them; Haar (the
    # default detector) does not: None
    landmarks: tuple[tuple[float, float], ...] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Analyzer:
    """The detector, crop and model, built once from settings given as the config file's
    sections: ``Analyzer(detect={"min_size": 48}, model={"path": "seed",
    "flip_tta": False})``, or a whole ``config``. Settings are checked as the config file's
    are (ConfigError names the key)."""

    def __init__(self, config: Config | None = None, **sections: dict[str, Any]):
        self.config = still_config(from_dict(sections, base=config))
        self.pipeline = build(self.config)
        self.labels = self.pipeline.classifier.info.labels
        self._lock = threading.Lock()  # one interpreter: one picture at a time

    def analyze(self, image: np.ndarray | str | PathLike, channels: str = "bgr"
                ) -> list[FaceAnalysis]:
        """The faces of a picture: a numpy array (H×W grey, or H×W×3/4 in ``channels``
        order, 'bgr' as OpenCV gives it or 'rgb' as PIL, scikit-image and matplotlib do;
        uint8, or 16-bit/float scaled as a picture file's would be) or a picture file's
        path. Largest faces first, at most detect.max_faces; [] for a picture without
        one."""
        bgr, name = self._bgr(image, channels)
        with self._lock:
            result = self.pipeline.process(Frame(0, 0.0, bgr, name))
        return [FaceAnalysis((f.box.x, f.box.y, f.box.w, f.box.h), f.prediction.label,
                             round(f.prediction.confidence, 5),
                             {k: round(float(p), 5) for k, p in zip(self.labels,
                                                                    f.prediction.probs,
                                                                    strict=True)},
                             _points(f.box.landmarks))
                for f in result.faces]

    @staticmethod
    def _bgr(image: Any, channels: str) -> tuple[np.ndarray, str]:
        if channels not in ("bgr", "rgb"):
            raise AnalyzeError(f"channels must be 'bgr' or 'rgb', not {channels!r}")
        if isinstance(image, str | PathLike):
            path = Path(image)
            if not path.is_file():
                raise AnalyzeError(f"picture not found: {path}")
            bgr = read_image(path)
            if bgr is None:
                raise AnalyzeError(f"not a picture OpenCV can read: {path}")
            return bgr, str(path)
        if not isinstance(image, np.ndarray):
            raise AnalyzeError(f"a picture must be a numpy array or a path, not "
                               f"{type(image).__name__}")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)) \
                or min(image.shape[:2]) < 1:
            raise AnalyzeError(f"a picture must be H×W or H×W×3 (or ×4), not {image.shape}")
        bgr = to_frame_image(image)
        if bgr is None:
            raise AnalyzeError("a picture with no finite pixel")
        if channels == "rgb" and bgr.ndim == 3 and bgr.shape[2] == 3:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_RGB2BGR)
        return bgr, "array"

    def close(self) -> None:
        self.pipeline.close()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


_shared: dict[str, Analyzer] = {}
_shared_lock = threading.Lock()


def analyze(image: np.ndarray | str | PathLike, channels: str = "bgr",
            **sections: dict[str, Any]) -> list[FaceAnalysis]:
    """``Analyzer(**sections).analyze(image, channels)``, with the Analyzer kept for the
    next call with the same settings (the model is loaded once)."""
    key = json.dumps(sections, sort_keys=True, default=str)
    with _shared_lock:
        fer = _shared.get(key)
        if fer is None:
            fer = _shared[key] = Analyzer(**sections)
    return fer.analyze(image, channels)


def _points(landmarks) -> tuple[tuple[float, float], ...] | None:
    """A box's landmarks as (x, y) pairs; None where the detector gives none."""
    if landmarks is None:
        return None
    return tuple((round(x, 2), round(y, 2)) for x, y in points(landmarks))

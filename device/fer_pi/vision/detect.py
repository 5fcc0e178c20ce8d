"""Haar-cascade face detection on a grayscale, equalized, optionally downscaled frame."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_pi.core.records import FaceBox

CASCADE_NAME = "haarcascade_frontalface_default.xml"
# how far around where the tracker expects a known face it is looked for, in its size
NEAR_REACH = 0.6
_SYSTEM_DIRS = (
    "/usr/share/opencv4/haarcascades",
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
)


class DetectorError(Exception):
    pass


class Detector(Protocol):
    """What FaceFinder, the scan thread and the pipeline need of a detector (HaarDetector,
    vision.yunet.YuNetDetector): boxes in frame pixels, largest first."""

    color: bool  # wants the colour frame (else the gray one)
    max_faces: int

    def detect(self, image: np.ndarray) -> list[FaceBox]: ...

    def detect_scaled(self, small: np.ndarray, scale: float) -> list[FaceBox]: ...

    def detect_near(self, image: np.ndarray, expected: FaceBox, reach: float = NEAR_REACH,
                    min_neighbors: int | None = None, first: bool = True) -> FaceBox | None: ...

    def clone(self) -> Detector: ...


def find_cascade(name: str = CASCADE_NAME) -> Path:
    """cv2.data (pip wheels) first, then the system OpenCV data folders (apt's python3-opencv)."""
    dirs = []
    data = getattr(cv2, "data", None)
    if data is not None and getattr(data, "haarcascades", None):
        dirs.append(data.haarcascades)
    dirs.extend(_SYSTEM_DIRS)
    for d in dirs:
        p = Path(d) / name
        if p.is_file():
            return p
    raise DetectorError(f"Haar cascade {name} not found in: {', '.join(map(str, dirs))}")


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any frame OpenCV or a camera gives (gray, BGR, BGRA) → 2-D uint8."""
    if image.ndim == 2:
        gray = image
    elif image.shape[2] == 1:
        gray = image[:, :, 0]
    elif image.shape[2] == 4:
        gray = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    else:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if gray.dtype != np.uint8:
        gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return gray


# OpenCV's frontal-face cascade looks at 24x24 windows: a face must be at least this many
# pixels wide in the picture the cascade scans
CASCADE_WINDOW = 24
# a known face is looked for again at about this many windows wide (enough detail to find
# it: 1.5 lost faces on the moving-faces clips, 28 fragments where 2 gave 2), between these
# sizes of the one expected (0.7-1.45 cost 8 % more and found no more faces)
NEAR_WINDOWS = 2.0
NEAR_SIZES = (0.8, 1.25)
# a face alone is looked for first this close, and in the whole reach only where it is not
# there or touches that window's edge: most frames it is there, and the cascade's cost grows
# with the window's area (docs/performance.md, session 13)
NEAR_FIRST_REACH = 0.3


def scan_scale(width: int, min_size: int, detect_width: int = -1) -> float:
    """How much to shrink a frame before the full scan: -1 (auto) as much as the smallest
    face wanted allows (a face of ``min_size`` frame pixels must still fill the cascade's
    window); 0 not at all; N to N pixels wide."""
    if detect_width == 0 or width <= 0:
        return 1.0
    if detect_width < 0:
        return min(1.0, CASCADE_WINDOW / max(1, min_size))
    return min(1.0, detect_width / width)


def shrunk(image: np.ndarray, scale: float) -> np.ndarray:
    """The picture a whole-frame scan looks at: the frame itself, or scaled down."""
    if scale >= 1.0:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def scan_width(width: int, d) -> int:
    """The width a camera should make its small detection copy for the [detect] settings
    (0: no copy, the scan runs at full size)."""
    scale = scan_scale(width, d.min_size, d.detect_width)
    return round(width * scale) if scale < 1.0 else 0


class HaarDetector:
    """OpenCV's frontal-face cascade; boxes come back in full-frame coordinates, largest first.

    ``detect`` scans a whole frame (shrunk as far as ``min_size`` allows); ``detect_near``
    looks again for a face already known, in a small window around where it should be,
    at a scale where it is about twice the cascade's window: a fraction of a full scan's
    cost, so every known face can be found again in every frame."""

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 48,
                 max_faces: int = 8, detect_width: int = 0, cascade: Path | None = None,
                 max_size: int = 0):
        path = cascade or find_cascade()
        self.path = path
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DetectorError(f"Haar cascade could not be loaded: {path}")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_faces, self.detect_width = min_size, max_faces, detect_width
        self.max_size = max_size  # 0: no limit

    @classmethod
    def from_config(cls, d) -> HaarDetector:
        """The detector a [detect] section (app.config.DetectConfig) describes."""
        return cls(d.scale_factor, d.min_neighbors, d.min_size, d.max_faces, d.detect_width,
                   cascade=find_cascade(f"haarcascade_{d.cascade}.xml"), max_size=d.max_size)

    def clone(self) -> HaarDetector:
        """The same detector with a cascade of its own: a CascadeClassifier must not be used
        by two threads at once (it keeps per-scan state; shared, scans fail or crash)."""
        return HaarDetector(self.scale_factor, self.min_neighbors, self.min_size,
                            self.max_faces, self.detect_width, self.path, self.max_size)

    def scale_for(self, width: int) -> float:
        return scan_scale(width, self.min_size, self.detect_width)

    color = False  # give it the gray frame (a colour one is converted, at a cost)

    def detect(self, gray: np.ndarray) -> list[FaceBox]:
        gray = to_gray(gray)
        scale = self.scale_for(gray.shape[1])
        return self.detect_scaled(shrunk(gray, scale), scale)

    def detect_scaled(self, small: np.ndarray, scale: float) -> list[FaceBox]:
        """Detect on ``small``, a copy of the frame scaled by ``scale``; boxes in frame pixels."""
        small = cv2.equalizeHist(np.ascontiguousarray(to_gray(small)))
        min_px = max(CASCADE_WINDOW, round(self.min_size * scale))
        # a largest size also ends the pyramid early: fewer levels, less time
        max_px = max(min_px, round(self.max_size * scale)) if self.max_size else 0
        rects = self.cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors,
                                              minSize=(min_px, min_px), maxSize=(max_px, max_px))
        boxes = [
            FaceBox(round(x / scale), round(y / scale), round(bw / scale), round(bh / scale))
            for (x, y, bw, bh) in (rects if len(rects) else [])
        ]
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        return boxes[: self.max_faces]

    def detect_near(self, gray: np.ndarray, expected: FaceBox, reach: float = NEAR_REACH,
                    min_neighbors: int | None = None, first: bool = True) -> FaceBox | None:
        """The face nearest ``expected`` within ``reach`` of its size around it, between
        NEAR_SIZES times its size; None if the cascade finds none there. With ``first``,
        looked for within NEAR_FIRST_REACH first, where it nearly always is (the caller
        says no where another face is near: see FaceFinder)."""
        if first and reach > NEAR_FIRST_REACH:
            box = self._near(gray, expected, NEAR_FIRST_REACH, min_neighbors, whole_only=True)
            if box is not None:
                return box
        return self._near(gray, expected, reach, min_neighbors)

    def _near(self, gray: np.ndarray, expected: FaceBox, reach: float,
              min_neighbors: int | None, whole_only: bool = False) -> FaceBox | None:
        """``whole_only``: None where the face found touches the window's edge inside the
        frame (it may be cut there, its box off, or another face partly in view)."""
        h, w = gray.shape[:2]
        side = max(expected.w, expected.h, 1)
        m = side * reach
        x0, y0 = max(0, int(expected.x - m)), max(0, int(expected.y - m))
        x1, y1 = min(w, int(expected.x + side + m)), min(h, int(expected.y + side + m))
        if x1 - x0 < CASCADE_WINDOW or y1 - y0 < CASCADE_WINDOW:
            return None
        # the face NEAR_WINDOWS wide: enough detail to find it, few pixels to scan
        scale = min(1.0, NEAR_WINDOWS * CASCADE_WINDOW / side)
        roi = to_gray(gray[y0:y1, x0:x1])
        if scale < 1.0:
            roi = cv2.resize(roi, (max(1, round((x1 - x0) * scale)),
                                   max(1, round((y1 - y0) * scale))), interpolation=cv2.INTER_AREA)
        roi = cv2.equalizeHist(np.ascontiguousarray(roi))
        lo = max(CASCADE_WINDOW, int(side * scale * NEAR_SIZES[0]))
        hi = max(lo + 1, int(side * scale * NEAR_SIZES[1]))
        rects = self.cascade.detectMultiScale(
            roi, scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors if min_neighbors is None else min_neighbors,
            minSize=(lo, lo), maxSize=(hi, hi))
        if not len(rects):
            return None
        ex, ey = expected.center
        best = min(rects, key=lambda r: (x0 + (r[0] + r[2] / 2) / scale - ex) ** 2
                   + (y0 + (r[1] + r[3] / 2) / scale - ey) ** 2)
        x, y, bw, bh = best
        rh, rw = roi.shape[:2]
        if whole_only and ((x <= 1 and x0 > 0) or (y <= 1 and y0 > 0)
                           or (x + bw >= rw - 1 and x1 < w) or (y + bh >= rh - 1 and y1 < h)):
            return None
        return FaceBox(round(x0 + x / scale), round(y0 + y / scale), round(bw / scale),
                       round(bh / scale))


def make_detector(d, still: bool = False):
    """The detector a [detect] section describes: a HaarDetector or a YuNetDetector, which
    answer the same calls. ``still``: each picture stands alone (no tracker)."""
    if d.detector == "yunet":
        from fer_pi.vision.yunet import YuNetDetector

        return YuNetDetector.from_config(d, refine=still)
    return HaarDetector.from_config(d)

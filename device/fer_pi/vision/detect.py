"""Haar-cascade face detection on a grayscale, equalized, optionally downscaled frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_pi.vision.schema import FaceBox

CASCADE_NAME = "haarcascade_frontalface_default.xml"
_SYSTEM_DIRS = (
    "/usr/share/opencv4/haarcascades",
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
)


class DetectorError(Exception):
    pass


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


class HaarDetector:
    """OpenCV's frontal-face cascade; boxes come back in full-frame coordinates, largest first."""

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 48,
                 max_faces: int = 8, detect_width: int = 0, cascade: Path | None = None,
                 max_size: int = 0):
        path = cascade or find_cascade()
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DetectorError(f"Haar cascade could not be loaded: {path}")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_faces, self.detect_width = min_size, max_faces, detect_width
        self.max_size = max_size  # 0: no limit

    def detect(self, gray: np.ndarray) -> list[FaceBox]:
        h, w = gray.shape[:2]
        if self.detect_width and w > self.detect_width:
            scale = self.detect_width / w
            small = cv2.resize(gray, (self.detect_width, max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
            return self.detect_scaled(small, scale)
        return self.detect_scaled(gray, 1.0)

    def detect_scaled(self, small: np.ndarray, scale: float) -> list[FaceBox]:
        """Detect on ``small``, a copy of the frame scaled by ``scale``; boxes in frame pixels."""
        small = cv2.equalizeHist(np.ascontiguousarray(small))
        min_px = max(8, round(self.min_size * scale))
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

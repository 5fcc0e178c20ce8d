"""YuNet, a learned face detector run by OpenCV itself (``cv2.FaceDetectorYN``): it finds heads
tilted and turned that the Haar cascade misses, and gives five landmarks with which each
crop is turned upright (vision.align). Same calls as HaarDetector, so FaceFinder, the scan
thread and the tracker use either.

The model file (MIT, 232,589 bytes, with its licence) ships inside the package: nothing is
downloaded at run time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from fer_pi.core.records import FaceBox
from fer_pi.vision.align import roll_deg, upright_frame
from fer_pi.vision.detect import shrunk
from fer_pi.vision.modelfile import ModelError

YUNET_FILE = "face_detection_yunet_2023mar.onnx"

# YuNet finds a face tilted by 35 degrees when it is at least this many pixels wide in the
# picture it looks at (data/realfaces performers 01-15 at a score of 0.6: 96 % at 48 px,
# 72 % at 28; upright, 100 % from 28 px): a scan shrinks the frame no further than that for
# a face of detect.min_size
YUNET_FACE = 48
# pictures that stand alone: each face is looked at again this large, turned upright, this
# many times at most (each pass a YuNet run on a 448x448 window: vision.yunet._refine)
REFINE_FACE = 224
REFINE_PASSES = 3
# a refind scales its window so the face is this wide: at 48 px a tilt settled 4 degrees
# short of the truth (the demo face turned by 15-30), at 64 within 1 (a refind 3.7 ms here,
# against 2.4)
NEAR_FACE = 64
# ... YuNet's own face, that is: about 1.3 times the side of the Haar-like square a box is
# (performers 01-15 and the demo face turned by 15-30: after 8 refinds 3.4 degrees off on
# average at 1.3, 5.2 at 1.0, 4.4 at 1.45)
NEAR_SIDE = 1.3
# a live face's tilt as detect_near reads it in its turned window, where YuNet reads about
# half of what is left: what is left, times this, a refind (at most this many degrees)
NEAR_GAIN = 2.0
NEAR_STEP_DEG = 10.0
# a face whose landmarks make it this much smaller than detect.min_size still counts: small
# faces' landmarks are coarse (at 1.0, a third of the faces of 32-47 px were dropped)
MIN_SIZE_TOLERANCE = 0.8
# the first frame's input size only: each call sets the size of what it is given
_FIRST_SIZE = (320, 240)


def packaged_model() -> Path:
    return Path(str(resources.files("fer_pi.models").joinpath("yunet", YUNET_FILE)))


def as_bgr(image: np.ndarray) -> np.ndarray:
    """YuNet wants three channels; it finds tilted faces far better in colour than in gray
    (35 degrees, faces of 60 px: 146 of 156 in colour, 4 of 156 in gray)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


def load(path: Path, score: float, nms: float):
    """The OpenCV detector for an ONNX file; ModelError naming the file when it is missing
    or not a YuNet model OpenCV can run."""
    if not path.is_file():
        raise ModelError(f"YuNet face detector model not found: {path}")
    try:
        net = cv2.FaceDetectorYN.create(str(path), "", _FIRST_SIZE, score, nms, 5000)
        net.detect(np.zeros((_FIRST_SIZE[1], _FIRST_SIZE[0], 3), np.uint8))
    except cv2.error as e:
        reason = (str(e).strip().splitlines() or ["cannot be loaded"])[-1][:160]
        raise ModelError(f"YuNet face detector model {path} cannot be used: {reason}") from None
    return net


class YuNetDetector:
    """Boxes in full-frame coordinates, largest first, each with its five landmarks.

    ``detect`` looks at a whole frame (shrunk as far as ``min_size`` allows); ``detect_near``
    looks again for a face already known, in a small window around where it should be,
    turned by its tilt and scaled so the face is ``NEAR_FACE`` pixels wide: a small input,
    so cheap."""

    color = True  # give it the colour frame: it finds tilted faces in colour (as_bgr)

    def __init__(self, score: float = 0.6, nms: float = 0.3, min_size: int = 32,
                 max_faces: int = 8, detect_width: int = -1, model: Path | None = None,
                 max_size: int = 0, refine: bool = False):
        self.path = model or packaged_model()
        self.refine = refine
        self.score, self.nms = score, nms
        self.net = load(self.path, score, nms)
        self.min_size, self.max_faces, self.detect_width = min_size, max_faces, detect_width
        self.max_size = max_size  # 0: no limit
        self._size: tuple[int, int] | None = None

    @classmethod
    def from_config(cls, d, refine: bool = False) -> YuNetDetector:
        """The detector a [detect] section (app.config.DetectConfig) describes; ``refine``
        for pictures that stand alone (no tracker turns their faces upright over frames)."""
        return cls(d.yunet_score, d.yunet_nms, d.min_size, d.max_faces, d.detect_width,
                   model=Path(d.yunet_model) if d.yunet_model else None,
                   max_size=d.max_size, refine=refine)

    def clone(self) -> YuNetDetector:
        """A detector of its own for another thread (one OpenCV net is not shared by two)."""
        return YuNetDetector(self.score, self.nms, self.min_size, self.max_faces,
                             self.detect_width, self.path, self.max_size, self.refine)

    def scale_for(self, width: int) -> float:
        if self.detect_width == 0 or width <= 0:
            return 1.0
        if self.detect_width < 0:
            return min(1.0, YUNET_FACE / max(1, self.min_size))
        return min(1.0, self.detect_width / width)

    def _net(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        if (w, h) != self._size:
            self.net.setInputSize((w, h))
            self._size = (w, h)
        _, rows = self.net.detect(bgr)
        return np.empty((0, 15), np.float32) if rows is None else rows

    def _run(self, bgr: np.ndarray) -> np.ndarray:
        rows = self._net(bgr)
        if self.refine:
            for row in rows:
                self._refine(bgr, row)
        return rows

    def _refine(self, bgr: np.ndarray, row: np.ndarray) -> None:
        """YuNet's landmarks follow a tilt only where the face is large and fills the
        picture (performers 01-15 turned by 20 degrees: a face of 160 px in a window twice
        as wide reads 17, one of 48 px reads 4): the face is looked at again that way,
        turned upright by what the landmarks say, until they say it is level (REFINE_PASSES
        times at most). In place. For pictures that stand alone: it costs a 448x448 run a pass;
        a live face is turned upright over its next frames by detect_near instead."""
        for _ in range(REFINE_PASSES):
            cx, cy = float(row[0] + row[2] / 2), float(row[1] + row[3] / 2)
            side = float(max(row[2], row[3], 1))
            found = self._upright_look(bgr, (cx, cy), side, roll_deg(row[4:14]), REFINE_FACE,
                                       2.0)
            if found is None:
                return
            row[4:14] = found[4:14]
            if abs(roll_deg(found[15:25])) < 1.0:  # the window saw it level
                return

    def _upright_look(self, bgr: np.ndarray, centre: tuple[float, float], side: float,
                      roll: float, face_px: int, wide: float) -> np.ndarray | None:
        """YuNet on a window around ``centre``, turned by ``roll`` and scaled so a face of
        ``side`` is ``face_px`` wide, ``wide`` faces across: the row of the face nearest the
        middle with its box and landmarks in frame pixels (then, at 15:25, its landmarks as
        seen in the window, upright), or None."""
        n = max(16, int(round(wide * face_px)))
        k = face_px / max(1.0, side)
        cx, cy = centre
        m = cv2.getRotationMatrix2D((cx, cy), roll, k)
        m[0, 2] += n / 2.0 - cx
        m[1, 2] += n / 2.0 - cy
        # (warpAffine has no INTER_AREA: it would run INTER_LINEAR under that name)
        patch = cv2.warpAffine(bgr, m, (n, n), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        rows = self._net(patch)
        if not len(rows):
            return None
        best = min(rows, key=lambda r: (r[0] + r[2] / 2 - n / 2) ** 2
                   + (r[1] + r[3] / 2 - n / 2) ** 2)
        back = cv2.invertAffineTransform(m)
        xy = best[4:14].reshape(5, 2).astype(np.float64)
        pts = (xy @ back[:, :2].T + back[:, 2]).reshape(-1)
        bc = np.array([best[0] + best[2] / 2, best[1] + best[3] / 2]) @ back[:, :2].T + back[:, 2]
        w, h = float(best[2]) / k, float(best[3]) / k
        out = np.empty(25, np.float64)
        out[:4] = (bc[0] - w / 2, bc[1] - h / 2, w, h)
        out[4:14] = pts
        out[14] = best[14]
        out[15:25] = best[4:14]
        return out

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        scale = self.scale_for(image.shape[1])
        return self.detect_scaled(shrunk(image, scale), scale)

    def detect_scaled(self, small: np.ndarray, scale: float) -> list[FaceBox]:
        """Detect on ``small``, a copy of the frame scaled by ``scale``; boxes in frame pixels."""
        boxes = [_box(r, 1.0 / scale) for r in self._run(as_bgr(small))]
        lo = self.min_size * MIN_SIZE_TOLERANCE
        boxes = [b for b in boxes if b.w >= lo and (not self.max_size or b.w <= self.max_size)]
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        return boxes[: self.max_faces]

    def detect_near(self, image: np.ndarray, expected: FaceBox, reach: float = 0.5,
                    min_neighbors: int | None = None, first: bool = True) -> FaceBox | None:
        """The face nearest ``expected`` within ``reach`` of its size around it, between 0.7
        and 1.45 times its size; None if YuNet finds none there. The window is turned by the
        tilt the face had (its landmarks), so YuNet sees it nearly upright: it finds it
        surely, and the little tilt its landmarks still show is added, so the estimate
        closes in on the true tilt frame by frame. (``min_neighbors`` is Haar's and ignored:
        the signature is the same so either detector serves.)"""
        side = float(max(expected.w, expected.h, 1))
        roll = roll_deg(expected.landmarks) if expected.landmarks is not None else 0.0
        row = self._upright_look(as_bgr(image), expected.center, side * NEAR_SIDE, roll,
                                 NEAR_FACE, 1.0 + 2.0 * reach)
        if row is None:
            return None
        if expected.landmarks is not None:
            # the tilt the window still shows, read low by YuNet at this size: taken
            # NEAR_GAIN times (at most NEAR_STEP_DEG a frame), turned about the eyes' midpoint
            rest = roll_deg(row[15:25])
            step = max(-NEAR_STEP_DEG, min(NEAR_STEP_DEG, (NEAR_GAIN - 1.0) * rest))
            row[4:14] = _turned(row[4:14], step)
        box = _box(row)
        if not _consistent(row, box):
            return None
        (bx, by), (ex, ey) = box.center, expected.center
        if not 0.7 * side <= box.w <= 1.45 * side or max(abs(bx - ex), abs(by - ey)) > \
                (reach + 0.5) * side:
            return None  # as Haar's refind: the same face, the same size, near its place
        return box


def _consistent(row: np.ndarray, box: FaceBox) -> bool:
    """YuNet's own rectangle and its landmarks describe the same face: for a face half
    hidden behind a nearer one, the rectangle holds the part in view and the landmarks,
    guessed, put the face elsewhere or at another size. Such a sighting is not used to
    follow a face (it swapped two faces' IDs where they crossed)."""
    w, h = float(row[2]), float(row[3])
    cx, cy = float(row[0]) + w / 2, float(row[1]) + h / 2
    bx, by = box.center
    ratio = box.w / max(1.0, w)
    return CONSISTENT[0] <= ratio <= CONSISTENT[1] and abs(bx - cx) <= 0.25 * w \
        and abs(by - cy) <= 0.25 * h


# a Haar-like side from the landmarks against YuNet's own width: 1.055 on whole faces
# (performers 01-15); outside these bounds the two disagree
CONSISTENT = (0.75, 1.45)


def _box(row: np.ndarray, scale: float = 1.0) -> FaceBox:
    """One row of YuNet's output (x, y, w, h, five x, y landmarks, score), its coordinates
    times ``scale`` (from a shrunk frame's pixels to the frame's), as
    the square Haar would draw around the face held upright (vision.align): the same boxes
    whichever detector found them, for the tracker, the board, the results and the crop.
    (YuNet's own rectangle is taller, and for a face half hidden behind another, a sliver.)"""
    pts = tuple(round(float(v) * scale, 2) for v in row[4:14])
    cx, cy, side, _ = upright_frame(pts)
    side = max(1, round(side))
    return FaceBox(round(cx - side / 2), round(cy - side / 2), side, side, pts)


def _turned(pts: np.ndarray, deg: float) -> np.ndarray:
    """Landmarks turned by ``deg`` (clockwise on the screen, as roll_deg counts) about the
    eyes' midpoint."""
    if not deg:
        return pts
    xy = np.asarray(pts, np.float64).reshape(5, 2)
    c = xy[:2].mean(axis=0)
    a = np.radians(deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return ((xy - c) @ rot.T + c).reshape(-1)

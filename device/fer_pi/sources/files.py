"""Recorded sources: a video file, a folder of images."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from fer_pi.core.records import Frame
from fer_pi.sources.base import SourceError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
# a picture larger than this on its longer side is scaled down as it is read: a 10000x10000
# photo would otherwise cost gigabytes through detection, and no face needs more pixels
MAX_IMAGE_SIDE = 4096


class VideoFile:
    """A recorded clip; timestamps are positions in the clip, so replays are deterministic."""

    def __init__(self, path: Path, loop: bool = False):
        self.path, self.loop = Path(path), loop
        self.name = str(path)
        self.cap: cv2.VideoCapture | None = None
        self.count = 0
        self.fps = 30.0
        self.corrupt_frames = 0
        self._offset = 0.0

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"video not found: {self.path}")
        if self.path.suffix.lower() in IMAGE_SUFFIXES:  # OpenCV would read it as 0 frames
            raise SourceError(f"{self.path} is a picture, not a video: use --images {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"cannot read video: {self.path} (not a video OpenCV can decode)")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise SourceError(f"video has no readable frames: {self.path}")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 1000 else 30.0
        self.cap = cap
        self._in_clip = 0

    MAX_CONSECUTIVE_BAD = 50

    def read(self) -> Frame | None:
        """The next decodable frame. A frame that fails to decode inside the clip is
        skipped and counted; the end of the clip (or of a truncated file) ends it."""
        if self.cap is None:
            raise SourceError(f"{self.name} is not open")
        bad = 0
        while True:
            ok, image = self.cap.read()
            if ok and image is not None and image.size:
                ts = self._offset + self._in_clip / self.fps
                frame = Frame(self.count, ts, image, self.name)
                self.count += 1
                self._in_clip += 1
                return frame
            # a failed read inside the clip has consumed that frame: the next read is the
            # next frame. Past the header's frame count (or a truncated file) it is the end.
            total = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
            if 0 < total and self._in_clip < total and bad < self.MAX_CONSECUTIVE_BAD:
                bad += 1
                self.corrupt_frames += 1
                log.warning("%s: frame %d unreadable, skipped", self.name, self._in_clip)
                self._in_clip += 1  # keep timestamps true to the clip
                continue
            if not self.loop or self._in_clip == 0:
                return None
            self._offset += self._in_clip / self.fps
            self._in_clip = 0
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def read_image(file: Path, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray | None:
    """An image file as an 8-bit frame (16-bit and float images scaled, NaN and infinite
    pixels as black), at most ``max_side`` pixels on its longer side; None if unreadable or
    with no finite pixel at all."""
    image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    image = to_frame_image(image)
    if image is None:
        return None
    side = max(image.shape[:2])
    if side > max_side:
        f = max_side / side
        image = cv2.resize(image, (max(1, round(image.shape[1] * f)),
                                   max(1, round(image.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
        log.info("%s: %d px on its longer side, read at %d", file, side, max_side)
    return image


def to_frame_image(image: np.ndarray) -> np.ndarray | None:
    """A picture's pixels as a frame's: 8-bit (16-bit and float scaled, NaN and infinite
    pixels as black), grey or BGR (an alpha channel dropped); None with no finite pixel."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8:
        image = image.astype(np.float32, copy=False)
        finite = np.isfinite(image)
        if not finite.any():
            return None
        image = np.where(finite, image, 0.0)
        top = float(image.max())
        image = cv2.convertScaleAbs(image, alpha=255.0 / top if top > 1 else 255.0)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


class ImageFolder:
    """Every image in a folder, in name order (or one image file); unreadable files are
    skipped and counted. A frame's index is its file's place in that order, so the
    results still match the files after a skipped one; each frame names its file."""

    def __init__(self, path: Path, loop: bool = False, fps: float = 1.0):
        self.path, self.loop, self.fps = Path(path), loop, fps
        self.name = str(path)
        self.files: list[Path] = []
        self.count = 0
        self._pos = self._passes = 0
        self.corrupt_frames = 0

    def open(self) -> None:
        if self.path.is_file():
            if self.path.suffix.lower() not in IMAGE_SUFFIXES:
                raise SourceError(f"not a picture ({', '.join(sorted(IMAGE_SUFFIXES))}): "
                                  f"{self.path}")
            self.files = [self.path]
            return
        if not self.path.is_dir():
            raise SourceError(f"image file or folder not found: {self.path}")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {self.path}")

    def read(self) -> Frame | None:
        n = len(self.files)
        for _ in range(n):  # at most one pass over unreadable files per frame
            if self._pos >= n:
                if not self.loop:
                    return None
                self._pos = 0
            file = self.files[self._pos]
            index = self._passes * n + self._pos
            self._pos += 1
            if self._pos >= n:
                self._passes += 1 if self.loop else 0
            image = read_image(file)
            if image is None:
                log.warning("skipping unreadable image %s", file)
                self.corrupt_frames += 1
                continue
            self.count += 1
            return Frame(index, index / self.fps, image, str(file), file=str(file))
        return None

    def close(self) -> None:
        pass

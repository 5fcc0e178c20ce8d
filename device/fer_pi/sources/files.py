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


def read_image(file: Path) -> np.ndarray | None:
    """An image file as an 8-bit frame (16-bit and float images scaled); None if unreadable."""
    image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return image


class ImageFolder:
    """Every image in a folder, in name order; unreadable files are skipped and counted."""

    def __init__(self, path: Path, loop: bool = False, fps: float = 1.0):
        self.path, self.loop, self.fps = Path(path), loop, fps
        self.name = str(path)
        self.files: list[Path] = []
        self.count = 0
        self._pos = 0
        self.corrupt_frames = 0

    def open(self) -> None:
        if not self.path.is_dir():
            raise SourceError(f"image folder not found: {self.path}")
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
            self._pos += 1
            image = read_image(file)
            if image is None:
                log.warning("skipping unreadable image %s", file)
                self.corrupt_frames += 1
                continue
            frame = Frame(self.count, self.count / self.fps, image, str(file))
            self.count += 1
            return frame
        return None

    def close(self) -> None:
        pass

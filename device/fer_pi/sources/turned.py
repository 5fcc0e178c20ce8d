"""A source turned by 90, 180 or 270 degrees, for a camera mounted on its side."""

from __future__ import annotations

from dataclasses import replace

import cv2

from fer_pi.core.records import Frame
from fer_pi.sources.base import FrameSource, Wrapped

_TURNS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class Turned(Wrapped):
    """A source whose pictures are turned clockwise by 90, 180 or 270 degrees, for a
    camera mounted upside down or on its side: Haar finds upright faces only. The
    detection copy (the Pi camera's lores plane) is turned with the picture."""

    def __init__(self, inner: FrameSource, degrees: int):
        if degrees not in _TURNS:
            raise ValueError(f"rotate must be 90, 180 or 270, not {degrees}")
        super().__init__(inner)
        self.code = _TURNS[degrees]

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        small = frame.detect_gray
        return replace(frame, image=cv2.rotate(frame.image, self.code),
                       detect_gray=None if small is None else cv2.rotate(small, self.code))

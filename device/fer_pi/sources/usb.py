"""A V4L2/USB camera through OpenCV."""

from __future__ import annotations

import time

import cv2

from fer_pi.core.records import Frame
from fer_pi.sources.base import SourceError


class OpenCVCamera:
    """A V4L2/USB camera through OpenCV."""

    def __init__(self, index: int, width: int = 640, height: int = 480, fps: int = 30):
        self.index, self.width, self.height, self.fps = index, width, height, fps
        self.name = f"camera {index}"
        self.cap: cv2.VideoCapture | None = None
        self.count = 0
        self.corrupt_frames = 0

    def open(self) -> None:
        from fer_pi.sources.camera_list import not_a_camera

        driver = not_a_camera(self.index)
        if driver:  # the Pi camera's usual trap: its CSI receiver is /dev/video0
            raise SourceError(f"/dev/video{self.index} is {driver!r}, not a camera OpenCV can "
                              "read (a Pi camera is --camera picam; fer-pi --list-cameras "
                              "lists what opens)")
        try:
            cap = cv2.VideoCapture(self.index, cv2.CAP_V4L2) if hasattr(cv2, "CAP_V4L2") else None
            if cap is None or not cap.isOpened():
                if cap is not None:
                    cap.release()  # a half-open handle keeps the device busy for the next try
                cap = cv2.VideoCapture(self.index)
        except cv2.error as exc:  # OpenCV's own refusal of an index or backend
            first = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else "cv2.error"
            raise SourceError(f"cannot open camera {self.index} (/dev/video{self.index}): "
                              f"{first}") from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open camera {self.index} (/dev/video{self.index}); "
                              "for the Pi camera use --camera picam")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a backlog
        self.cap = cap

    def read(self) -> Frame | None:
        if self.cap is None:
            raise SourceError(f"{self.name} is not open")
        ok, image = self.cap.read()
        if not ok or image is None:
            raise SourceError(f"{self.name}: no frame (unplugged?)")
        frame = Frame(self.count, time.time(), image, self.name, monotonic=time.monotonic())
        self.count += 1
        return frame

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None

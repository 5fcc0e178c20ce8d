"""The Pi camera through picamera2 (apt: python3-picamera2).

picamera2 is imported only inside PiCamera.open(): the package probes devices at
import time, which breaks anything that merely imports this module off a Pi.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from fer_pi.core.records import Frame
from fer_pi.sources.base import SourceError

log = logging.getLogger(__name__)


class PiCamera:
    """The Pi camera through picamera2 (apt: python3-picamera2).

    Two streams from one request: ``main`` in RGB888 (B,G,R in memory, as OpenCV
    wants) for the picture and the face crops, and a small ``lores`` YUV420 stream
    whose Y plane is the grayscale image detection runs on, so the Pi does not
    convert or downscale the full frame for Haar.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30,
                 detect_width: int = 480, camera_num: int = 0):
        self.width, self.height, self.fps = width, height, fps
        self.detect_width = detect_width
        self.camera_num = camera_num  # a Pi 5 has two camera ports: picam, picam1
        self.name = "picam" if camera_num == 0 else f"picam{camera_num}"
        self.cam = None
        self.lores_size: tuple[int, int] | None = None
        self.count = 0
        self.corrupt_frames = 0

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # lazy on purpose: it probes devices on import
        except ImportError:
            raise SourceError("picamera2 is not installed: sudo apt install python3-picamera2 "
                              "and create the venv with --system-site-packages") from None
        cam = None
        try:
            cam = Picamera2(self.camera_num)
            streams = {"main": {"size": (self.width, self.height), "format": "RGB888"}}
            if self.detect_width and self.detect_width < self.width:
                lw = self.detect_width - self.detect_width % 2
                lh = round(self.height * lw / self.width)
                streams["lores"] = {"size": (lw, lh - lh % 2), "format": "YUV420"}
            config = cam.create_video_configuration(
                **streams, controls={"FrameRate": float(self.fps)}, buffer_count=2)
            cam.align_configuration(config)  # sizes the ISP can produce
            cam.configure(config)
            cam.start()
            if "lores" in streams:
                self.lores_size = tuple(cam.camera_configuration()["lores"]["size"])
        except Exception as exc:  # picamera2 raises plain RuntimeError/IndexError on no camera
            if cam is not None:  # acquired but not started: let go, or the retry finds it busy
                _close_quietly(cam)
            raise SourceError(f"cannot open the Pi camera {self.name}: {exc}") from None
        self.cam = cam

    def read(self) -> Frame | None:
        if self.cam is None:
            raise SourceError(f"{self.name} is not open")
        try:
            if self.lores_size:
                (main, lores), _meta = self.cam.capture_arrays(["main", "lores"])
                lw, lh = self.lores_size
                small = lores[:lh, :lw]  # YUV420 array: the first lh rows are Y
            else:
                main, small = self.cam.capture_array("main"), None
        except Exception as exc:
            raise SourceError(f"{self.name}: capture failed: {exc}") from None
        frame = Frame(self.count, time.time(), np.ascontiguousarray(main[:, :, :3]), self.name,
                      small, monotonic=time.monotonic())
        self.count += 1
        return frame

    def close(self) -> None:
        if self.cam is not None:
            try:
                self.cam.stop()
                self.cam.close()
            finally:
                self.cam = None


def _close_quietly(cam) -> None:
    for step in (cam.stop, cam.close):
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - a camera that failed to start may fail here too
            log.debug("closing a camera that failed to open: %s", exc)

"""Frame sources behind one interface: OpenCV camera, Pi camera, video file, image folder.

picamera2 is imported only inside PiCamera.open(): the package probes devices at
import time, which breaks anything that merely imports this module off a Pi.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_pi.hours import Hours, when
from fer_pi.schema import Frame

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


class SourceError(Exception):
    """A source that cannot be opened; the message names the device or file."""


class FrameSource(Protocol):
    name: str
    corrupt_frames: int

    def open(self) -> None: ...
    def read(self) -> Frame | None:
        """The next frame; None at the end of a finite source. Raises SourceError on loss."""
    def close(self) -> None: ...


class OpenCVCamera:
    """A V4L2/USB camera through OpenCV."""

    def __init__(self, index: int, width: int = 640, height: int = 480, fps: int = 30):
        self.index, self.width, self.height, self.fps = index, width, height, fps
        self.name = f"camera {index}"
        self.cap: cv2.VideoCapture | None = None
        self.count = 0
        self.corrupt_frames = 0

    def open(self) -> None:
        from fer_pi.camera_list import not_a_camera

        driver = not_a_camera(self.index)
        if driver:  # the Pi camera's usual trap: its CSI receiver is /dev/video0
            raise SourceError(f"/dev/video{self.index} is {driver!r}, not a camera OpenCV can "
                              "read (a Pi camera is --camera picam; fer-pi --list-cameras "
                              "lists what opens)")
        cap = cv2.VideoCapture(self.index, cv2.CAP_V4L2) if hasattr(cv2, "CAP_V4L2") else None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()  # a half-open handle keeps the device busy for the next try
            cap = cv2.VideoCapture(self.index)
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


_TURNS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class Turned:
    """A source whose pictures are turned clockwise by 90, 180 or 270 degrees, for a
    camera mounted upside down or on its side: Haar finds upright faces only. The
    detection copy (the Pi camera's lores plane) is turned with the picture."""

    def __init__(self, inner: FrameSource, degrees: int):
        if degrees not in _TURNS:
            raise ValueError(f"rotate must be 90, 180 or 270, not {degrees}")
        self.inner, self.code = inner, _TURNS[degrees]

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def corrupt_frames(self) -> int:
        return self.inner.corrupt_frames

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        small = frame.detect_gray
        return replace(frame, image=cv2.rotate(frame.image, self.code),
                       detect_gray=None if small is None else cv2.rotate(small, self.code))

    def close(self) -> None:
        self.inner.close()


def open_source(camera: str = "", video: str = "", images: str = "", loop: bool = False,
                width: int = 640, height: int = 480, fps: int = 30,
                detect_width: int = 480, rotate: int = 0) -> FrameSource:
    """The source the settings name, opened; logs which one it picked."""
    src = make_source(camera, video, images, loop, width, height, fps, detect_width, rotate)
    src.open()
    log.info("source: %s", src.name)
    return src


class ResilientSource:
    """A live camera that survives being unplugged: on loss it closes, waits with
    exponential backoff and reopens, until frames come back or ``stop`` is set.

    ``on_wait`` is called at least once a second while waiting (board banner,
    watchdog keepalive), so a deliberate wait never looks like a hang.

    With ``hours`` (hours.Hours) the camera is closed outside them (state "closed") and
    opened again when they begin, without counting that as a reconnect.
    """

    def __init__(self, make: Callable[[], FrameSource], stop: threading.Event,
                 max_backoff_s: float = 10.0, on_wait: Callable[[str], None] | None = None,
                 first_backoff_s: float = 0.5, hours: Hours | None = None,
                 now: Callable[[], datetime] = datetime.now):
        self.hours, self.now = hours, now
        self.make, self.stop = make, stop
        self.max_backoff_s, self.first_backoff_s = max_backoff_s, first_backoff_s
        self.on_wait = on_wait or (lambda _msg: None)
        self.inner: FrameSource | None = None
        self.name = "camera"
        self.count = 0
        self.reconnects = 0
        self.state = "starting"
        # what on_wait's message says, for a board that says it in its own words
        self.opens_at: datetime | None = None
        self.retry_in_s = 0.0

    @property
    def corrupt_frames(self) -> int:
        return self.inner.corrupt_frames if self.inner else 0

    def open(self) -> None:
        self.inner = self.make()
        self.inner.open()  # a camera absent at start is an error the user must see
        self.name = self.inner.name
        self.state = "running"
        if self._closed_now():  # it is there; now close it until the hours begin
            self._close_inner()
            self.state = "closed"

    def _closed_now(self) -> bool:
        return self.hours is not None and not self.hours.is_open(self.now())

    def _wait_for_hours(self) -> None:
        self._close_inner()
        self.state = "closed"
        now = self.now()
        self.opens_at = self.hours.next_open(now)
        until = when(self.opens_at, now)  # "08:00", or "Mon 08:00" over a weekend
        log.info("outside source.hours (%s): camera closed until %s", self.hours, until)
        while not self.stop.is_set() and self._closed_now():
            self.on_wait(f"closed until {until}")
            self.stop.wait(1.0)
        if not self.stop.is_set():
            self._reconnect(try_now=True, counted=False)

    def read(self) -> Frame | None:
        while not self.stop.is_set():
            if self._closed_now():
                self._wait_for_hours()
                continue
            try:
                frame = self.inner.read() if self.inner else None
            except SourceError as exc:
                log.warning("%s; reopening with backoff", exc)
                self.state = "lost"
                self._reconnect()
                continue
            if frame is None:
                self.state = "ended"
                return None
            self.state = "running"
            frame = replace(frame, index=self.count)
            self.count += 1
            return frame
        return None

    def _reconnect(self, try_now: bool = False, counted: bool = True) -> None:
        self._close_inner()
        delay = self.first_backoff_s
        while not self.stop.is_set():
            self.state = "retrying"
            deadline = time.monotonic() + (0.0 if try_now else delay)
            try_now = False
            while not self.stop.is_set() and time.monotonic() < deadline:
                left = deadline - time.monotonic()
                self.retry_in_s = max(0.0, left)
                self.on_wait(f"camera lost, retrying in {max(0, left):.0f} s")
                self.stop.wait(min(1.0, max(0.0, left)))
            if self.stop.is_set():
                return
            try:
                src = self.make()
                src.open()
            except SourceError as exc:
                log.info("reopen failed: %s", exc)
                delay = min(self.max_backoff_s, delay * 2)
                continue
            self.inner = src
            if counted:
                self.reconnects += 1
                log.warning("%s is back (reconnect %d)", src.name, self.reconnects)
            else:
                log.info("%s open: source.hours began", src.name)
            return

    def _close_inner(self) -> None:
        if self.inner is not None:
            try:
                self.inner.close()
            except Exception as exc:  # noqa: BLE001 - a dead device may fail to close too
                log.debug("close after loss failed: %s", exc)
            self.inner = None

    def close(self) -> None:
        self._close_inner()


def make_source(camera: str = "", video: str = "", images: str = "", loop: bool = False,
                width: int = 640, height: int = 480, fps: int = 30,
                detect_width: int = 480, rotate: int = 0) -> FrameSource:
    """The source the settings name, not yet opened."""
    src = _make_source(camera, video, images, loop, width, height, fps, detect_width)
    return Turned(src, rotate) if rotate else src


def _make_source(camera: str, video: str, images: str, loop: bool, width: int, height: int,
                 fps: int, detect_width: int) -> FrameSource:
    if video:
        return VideoFile(Path(video), loop=loop)
    if images:
        return ImageFolder(Path(images), loop=loop)
    if camera.startswith("picam"):
        return PiCamera(width, height, fps, detect_width, int(camera[5:] or 0))
    if camera != "":
        return OpenCVCamera(int(camera), width, height, fps)
    raise SourceError("no source: give --camera N, --camera picam, --video PATH or --images DIR")

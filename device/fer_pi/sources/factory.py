"""The source the settings name: a factory that picks one and logs which."""

from __future__ import annotations

import logging
from pathlib import Path

from fer_pi.sources.base import FrameSource, SourceError
from fer_pi.sources.files import ImageFolder, VideoFile
from fer_pi.sources.picamera import PiCamera
from fer_pi.sources.turned import Turned
from fer_pi.sources.usb import OpenCVCamera

log = logging.getLogger(__name__)


def open_source(camera: str = "", video: str = "", images: str = "", loop: bool = False,
                width: int = 640, height: int = 480, fps: int = 30,
                detect_width: int = 480, rotate: int = 0) -> FrameSource:
    """The source the settings name, opened; logs which one it picked."""
    src = make_source(camera, video, images, loop, width, height, fps, detect_width, rotate)
    src.open()
    log.info("source: %s", src.name)
    return src


def source_from_config(s, detect_width: int = 480) -> FrameSource:
    """The source a [source] section (app.config.SourceConfig) names, not yet opened; the
    detection width sizes the Pi camera's small detection stream."""
    return make_source(s.camera, s.video, s.images, s.loop, s.width, s.height, s.fps,
                       detect_width, s.rotate)


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

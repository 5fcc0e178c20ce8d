"""Where frames come from: cameras (USB, Pi), recorded video and images, and the wrappers
that turn a camera, reopen a lost one and keep opening hours. Everything a caller needs
is importable from here; picamera2 is imported only when a Pi camera opens."""

from fer_pi.sources.base import FrameSource, SourceError
from fer_pi.sources.factory import make_source, open_source, source_from_config
from fer_pi.sources.files import IMAGE_SUFFIXES, ImageFolder, VideoFile, read_image
from fer_pi.sources.paced import Paced
from fer_pi.sources.picamera import PiCamera
from fer_pi.sources.resilient import ResilientSource
from fer_pi.sources.turned import Turned
from fer_pi.sources.usb import OpenCVCamera

__all__ = ["IMAGE_SUFFIXES", "FrameSource", "ImageFolder", "OpenCVCamera", "Paced", "PiCamera",
           "ResilientSource", "SourceError", "Turned", "VideoFile", "make_source", "open_source",
           "read_image", "source_from_config"]

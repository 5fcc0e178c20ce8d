"""An annotated copy of the input: a video (every frame read, at the input's rate and
size) or, for pictures, one picture per input file; the frames come marked up by
board.annotate."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from fer_pi.core.atomic import write_whole
from fer_pi.outputs.results import OutputError

log = logging.getLogger(__name__)

# by the file's suffix: what OpenCV's own FFmpeg writes and reads back everywhere
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def write_png(path: Path, bgr: np.ndarray) -> None:
    """A BGR picture as a PNG written whole or not at all (OSError when it cannot be)."""
    ok, png = cv2.imencode(".png", bgr)
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_whole(path, png.tobytes())


class AnnotatedVideo:
    """Writes each frame it is given; opened at the first frame (its size sets the video's)."""

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps = Path(path), fps
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise OutputError(f"annotated video must end in {', '.join(sorted(FOURCC))}: "
                              f"{self.path}")
        self.fourcc = FOURCC[suffix]
        if not self.path.parent.is_dir():
            raise OutputError(f"cannot write {self.path}: no folder {self.path.parent}")
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc),
                                          self.fps, (w, h))
            if not self.writer.isOpened():
                raise OutputError(f"cannot write video {self.path} ({self.fourcc})")
            self.size = (w, h)
        if (w, h) != self.size:  # a camera that changed mode: keep the video's own size
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            log.info("annotated video: %s, %d frames at %g FPS", self.path, self.frames,
                     self.fps)


class AnnotatedPictures:
    """One annotated picture per input picture, named as it was (``b.jpg`` -> ``b.png``)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.folder}: {exc.strerror or exc}") from None
        self.written = self.failed = 0

    def write(self, image: np.ndarray, name: str) -> None:
        path = self.folder / (Path(name).stem + ".png")
        try:
            write_png(path, image)
            self.written += 1
        except OSError as exc:  # a full disk: that picture is not written; the run goes on
            self.failed += 1
            log.error("cannot write %s (%s)", path, getattr(exc, "strerror", None) or exc)

    def close(self) -> None:
        pass

"""Generated test and demo clips from a redistributable face photo.

The face is scikit-image's bundled ``data.astronaut()`` (Eileen Collins, a NASA
photo in the public domain), so no clip needs to be committed or downloaded. A lossless
copy ships beside this module (``astronaut.png``, the same pixels), so the demo and
``fer-bench`` work in a device install, which has no scikit-image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class NeedsExtra(RuntimeError):
    """A generated clip or scene needs a package this install lacks (the message says which)."""


@dataclass(frozen=True)
class Placement:
    """The astronaut photo pasted with its top-left corner at (x, y), ``size`` pixels square."""

    x: int
    y: int
    size: int


def cache_dir() -> Path:
    """Where generated clips are kept between runs ($XDG_CACHE_HOME/fer-pi)."""
    import os

    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer-pi"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def astronaut_bgr() -> np.ndarray:
    img = cv2.imread(str(Path(__file__).with_name("astronaut.png")), cv2.IMREAD_COLOR)
    if img is not None:
        return img
    try:
        from skimage import data
    except ImportError:
        raise NeedsExtra("the demo clip needs fer_pi/sources/astronaut.png or scikit-image: "
                           "reinstall fer-pi, or pip install 'fer-pi[demo]'") from None
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def astronaut_face_bgr() -> np.ndarray:
    """The photo cut to head and shoulders (face about 40 % of the side): for several faces."""
    return np.ascontiguousarray(astronaut_bgr()[10:250, 105:345])


def grid_placements(n_faces: int, width: int = 640, height: int = 480) -> list[Placement]:
    """Up to 6 head-and-shoulders tiles side by side, for multi-face benchmarks."""
    cols = min(n_faces, 3)
    rows = -(-n_faces // cols) if n_faces else 0
    side = min(width // max(1, cols), height // max(1, rows), 240) if n_faces else 0
    return [Placement((i % cols) * side + (width - cols * side) // 2,
                      (i // cols) * side + (height - rows * side) // 2, side)
            for i in range(n_faces)]


def background(width: int, height: int) -> np.ndarray:
    """A smooth grey gradient: plain enough that Haar finds no faces in it."""
    gx = np.linspace(60, 150, width, dtype=np.float32)[None, :]
    gy = np.linspace(0, 40, height, dtype=np.float32)[:, None]
    g = (gx + gy).astype(np.uint8)
    return cv2.merge([g, g, g])


def compose(placements: Sequence[Placement], width: int = 640, height: int = 480,
            face: np.ndarray | None = None, noise: float = 0.0,
            rng: np.random.Generator | None = None) -> np.ndarray:
    """One frame with the photo at each placement (clipped at the frame's edges)."""
    face = astronaut_bgr() if face is None else face
    frame = background(width, height)
    for p in placements:
        img = cv2.resize(face, (p.size, p.size), interpolation=cv2.INTER_AREA)
        x0, y0 = max(0, p.x), max(0, p.y)
        x1, y1 = min(width, p.x + p.size), min(height, p.y + p.size)
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = img[y0 - p.y:y1 - p.y, x0 - p.x:x1 - p.x]
    if noise:
        rng = rng or np.random.default_rng(0)
        frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    return frame


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """An MJPG .avi (any OpenCV build with FFmpeg or its own MJPG writer reads it back)."""
    path = Path(path)
    writer = None
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write video {path}")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    return path


def demo_placements(n: int = 240, width: int = 640, height: int = 480) -> list[Placement]:
    """The photo drifting across the frame and breathing in scale: a face that moves.

    The photo's face is about 18 % of its side, so 340..460 px photos give the
    60..85 px faces a webcam sees at one to two metres.
    """
    out = []
    for i in range(n):
        t = i / max(1, n - 1)
        size = int(400 + 60 * np.sin(2 * np.pi * t))
        x = int((width - size) * (0.5 + 0.45 * np.sin(2 * np.pi * t * 1.5)))
        y = int((height - size) * 0.5 + 20 * np.cos(2 * np.pi * t))
        out.append(Placement(x, y, size))
    return out


def demo_clip(path: Path, n: int = 240) -> Path:
    face = astronaut_bgr()
    return write_clip(path, (compose([p], face=face) for p in demo_placements(n)))


def main(argv=None) -> int:
    """``python -m fer_pi.sources.demo OUT.avi``: the demo clip, e.g. to compare two installs."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m fer_pi.sources.demo", description=main.__doc__)
    p.add_argument("out", help="output .avi")
    p.add_argument("--frames", type=int, default=240)
    args = p.parse_args(argv)
    print(demo_clip(Path(args.out), args.frames))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

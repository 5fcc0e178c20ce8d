"""Shared fixtures: real clips written with cv2.VideoWriter, the shipped model, the cascade."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

pytest.importorskip("skimage", reason="test clips are made from scikit-image's astronaut photo")

from fer_pi.core.records import FaceBox  # noqa: E402
from fer_pi.sources.demo import Placement, astronaut_bgr, compose, write_clip  # noqa: E402
from fer_pi.vision.detect import HaarDetector, to_gray  # noqa: E402
from fer_pi.vision.modelfile import resolve_model  # noqa: E402

W, H = 640, 480
ROOT = Path(__file__).resolve().parents[1]  # the checkout
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(what: str, ci_must: bool = True) -> None:
    """A tool, data set or privilege a test cannot run without: here it skips naming it;
    under CI=true (which installs and provides them all) its absence fails the run."""
    if CI and ci_must:
        pytest.fail(f"CI=true, but this test's {what} is missing", pytrace=False)
    pytest.skip(f"needs {what}")


def fer2013_dir() -> Path:
    """The FER2013 folder ($FER_DATA or ../shared/data/fer2013), or need() it."""
    from fer_tools.data import default_data_dir

    data = default_data_dir()
    if data is None or not (data / "PublicTest.npz").is_file() \
            or not (data / "Training.npz").is_file():
        need("FER2013 (set FER_DATA or place it at ../shared/data/fer2013)")
    return data


@pytest.fixture(scope="session")
def fer2013() -> Path:
    """Session-wide, so a module fixture that trains on it (test_tools' smoke_run) can ask
    for it and skips with the reason, rather than running first with no data."""
    return fer2013_dir()


def need_tool(name: str, install: str) -> str:
    """A program a test runs (mosquitto, sshd, shellcheck ...): its path, or need() it."""
    import shutil

    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if os.path.exists(p)), None)
    if path is None:
        need(f"{name} ({install}; .ci/run installs it)")
    return path


# a mark for tests that read FER2013 through a module-level DATA
needs_data = pytest.mark.usefixtures("fer2013")


@pytest.fixture(scope="session")
def model_path() -> Path:
    return resolve_model("default")


@pytest.fixture(scope="session")
def face() -> np.ndarray:
    return astronaut_bgr()


@pytest.fixture(scope="session")
def reference_box(face) -> FaceBox:
    """Where the cascade finds the face in the unscaled photo; drawn boxes scale from it."""
    boxes = HaarDetector(detect_width=0).detect(to_gray(face))
    assert len(boxes) == 1, boxes
    return boxes[0]


def expected_box(ref: FaceBox, p: Placement, photo_side: int = 512) -> FaceBox:
    s = p.size / photo_side
    return FaceBox(round(p.x + ref.x * s), round(p.y + ref.y * s), round(ref.w * s),
                   round(ref.h * s))


def moving_placements(n: int = 60) -> list[Placement]:
    out = []
    for i in range(n):
        t = i / (n - 1)
        size = int(360 + 80 * t)  # the face grows: it comes closer
        out.append(Placement(int(20 + (W - size - 40) * t), int((H - size) / 2), size))
    return out


TWO_FACES = [Placement(0, 90, 310), Placement(325, 90, 310)]
HALF_OUT = Placement(W - 230, 40, 400)  # the photo's face sits left of centre: in frame, near the edge


@pytest.fixture(scope="session")
def clips(tmp_path_factory, face) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(7)
    return {
        "moving": write_clip(d / "moving.avi", (compose([p], face=face) for p in moving_placements())),
        "empty": write_clip(d / "empty.avi", (compose([], noise=3, rng=rng) for _ in range(20))),
        "two": write_clip(d / "two.avi", (compose(TWO_FACES, face=face) for _ in range(10))),
        "half_out": write_clip(d / "half_out.avi", (compose([HALF_OUT], face=face) for _ in range(10))),
    }


def replay(path, pipeline) -> list:
    """Every FrameResult of a video file through ``pipeline``, which is closed after."""
    from fer_pi.app.loop import run
    from fer_pi.sources import VideoFile

    src = VideoFile(path)
    src.open()
    out: list = []
    try:
        run(src, pipeline, sinks=[out.append])
    finally:
        src.close()
        pipeline.close()
    return out


def next_frame(source, waits: list[str] | None = None):
    """A ResilientSource's next frame, reading through its waits (their messages go to
    ``waits``): what the loop does, without the loop."""
    from fer_pi.core.records import Wait

    while True:
        item = source.read()
        if not isinstance(item, Wait):
            return item
        if waits is not None:
            waits.append(item.message)


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a broker, sshd or fer-pi --status)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """fer-pi as a user runs it: a real process."""
    full_env = {**os.environ, "SDL_VIDEODRIVER": "dummy", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fer_pi.app.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def spawn(*args: str, env: dict | None = None) -> subprocess.Popen:
    """fer-pi as a running process, for tests that watch it and then stop it."""
    return subprocess.Popen([sys.executable, "-m", "fer_pi.app.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SDL_VIDEODRIVER": "dummy", **(env or {})})


class FakeClock:
    """Time the test owns: float seconds (a monotonic clock) or a datetime (wall time)."""

    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds) if isinstance(self.t, datetime) else seconds


class ClockEvent(threading.Event):
    """A stop event whose wait passes the test's time instead of real time."""

    def __init__(self, clock: FakeClock):
        super().__init__()
        self.clock = clock

    def wait(self, timeout=None) -> bool:
        self.clock.advance(timeout or 0.0)
        return self.is_set()


STUB_PICAMERA2 = '''
import os

import numpy as np

class Picamera2:
    """A stand-in Pi camera for a real fer-pi process: grey frames, counted opens."""

    def __init__(self, camera_num=0):
        self.config = None

    def create_video_configuration(self, main, lores=None, controls=None, buffer_count=4):
        return {"main": dict(main), "lores": dict(lores) if lores else None}

    def align_configuration(self, config):
        pass

    def configure(self, config):
        self.config = config

    def camera_configuration(self):
        return self.config

    def start(self):
        print("stub camera started", flush=True)

    def capture_arrays(self, names):
        if os.environ.get("STUB_PICAMERA2_NO_FRAMES"):  # a sensor that is not delivering yet
            raise RuntimeError("Camera frontend has timed out!")
        w, h = self.config["main"]["size"]
        lw, lh = self.config["lores"]["size"]
        return [np.full((h, w, 3), 120, np.uint8), np.full((lh * 3 // 2, lw), 120, np.uint8)], {}

    def capture_array(self, name="main"):
        w, h = self.config["main"]["size"]
        return np.full((h, w, 3), 120, np.uint8)

    def stop(self):
        print("stub camera stopped", flush=True)

    def close(self):
        pass
'''


@pytest.fixture
def stub_picamera2(tmp_path) -> Path:
    """A folder for PYTHONPATH holding a stand-in picamera2 (grey frames; it prints when the
    camera starts and stops), so a real fer-pi process can run --camera picam off a Pi."""
    folder = tmp_path / "stub"
    (folder / "picamera2").mkdir(parents=True)
    (folder / "picamera2" / "__init__.py").write_text(STUB_PICAMERA2)
    return folder

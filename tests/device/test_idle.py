"""Idle pacing on the real pipeline (real cascade, real model), with a clock the test
owns: a camera delivering 30 frames a second, an empty room, a visitor, an empty room."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import ClockEvent, FakeClock

from fer_pi.app.assemble import build
from fer_pi.app.config import Config, ConfigError, load_file
from fer_pi.app.loop import run
from fer_pi.core.records import Frame
from fer_pi.sources.demo import Placement, background, compose
from fer_pi.sources.idle import IdlePacer

CAMERA_PERIOD = 1 / 30


class ScriptedCamera:
    """Each read blocks for one camera period, as a 30 FPS camera's does."""

    name, corrupt_frames = "scripted", 0

    def __init__(self, images: list[np.ndarray], clock: FakeClock):
        self.images, self.clock, self.i = images, clock, 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.i >= len(self.images):
            return None
        self.clock.t += CAMERA_PERIOD
        frame = Frame(self.i, self.clock.t, self.images[self.i], self.name,
                      monotonic=self.clock.t)
        self.i += 1
        return frame

    def close(self) -> None:
        pass


def test_an_empty_room_is_paced_and_a_face_brings_full_rate_back(face, caplog):
    empty, visitor = background(640, 480), compose([Placement(120, 40, 400)], face=face)
    script = [empty] * 60 + [visitor] * 3 + [empty] * 45
    clock = FakeClock(1000.0)
    pacer = IdlePacer(fps=5, after_s=1.0, clock=clock)
    seen: list[tuple[float, int]] = []
    with caplog.at_level(logging.INFO, logger="fer_pi.sources.idle"):
        run(ScriptedCamera(script, clock), build(Config()), stop=ClockEvent(clock),
            after=[lambda r, _s: seen.append((r.frame.steady_t, len(r.faces)))],
            pace=pacer.wait_s)
    times = np.array([t for t, _ in seen])
    gaps = np.diff(times)
    faces = [n for _, n in seen]
    first_face = faces.index(1)
    # the visitor is first seen two frames before it is shown (detect.confirm_frames 3): a
    # face not yet confirmed wakes the loop too
    woke = first_face - (Config().detect.confirm_frames - 1)
    # the first second at the camera's rate, then one frame every 0.2 s
    assert np.allclose(gaps[:29], CAMERA_PERIOD)
    assert np.allclose(gaps[31:woke], 0.2)
    assert np.allclose(gaps[woke:first_face], CAMERA_PERIOD)
    # the visitor is found on the next idle frame, and the rate is full again at once
    assert times[first_face] - times[0] < 1.0 + 0.2 * (60 - 30) + 0.21
    assert np.allclose(gaps[first_face:first_face + 30], CAMERA_PERIOD)
    # an empty room again: full rate for a second after the last face, then idle
    last_face = len(faces) - 1 - faces[::-1].index(1)
    assert np.allclose(gaps[last_face:last_face + 29], CAMERA_PERIOD)
    assert np.allclose(gaps[last_face + 31:], 0.2)
    assert gaps[last_face + 31:].size > 0
    assert "idle" in caplog.text and "full rate again" in caplog.text
    # every frame of the script was read: pacing waits, it does not skip frames it read
    assert len(seen) == len(script)


def test_idle_fps_zero_never_waits():
    clock = FakeClock(1000.0)
    pacer = IdlePacer(0, 1.0, clock=clock)

    class Empty:
        faces, candidates = (), 0

    clock.t += 3600
    assert pacer.wait_s(Empty()) == 0.0 and not pacer.idle


def test_idle_settings_are_checked_before_start(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[source]\nidle_fps = 0.1\n")
    with pytest.raises(ConfigError, match="source.idle_fps"):
        load_file(path)
    path.write_text("[source]\nidle_fps = 5\nidle_after_s = 0\n")
    with pytest.raises(ConfigError, match="idle_after_s"):
        load_file(path)


def test_a_real_camera_process_goes_idle_in_an_empty_room(tmp_path, stub_picamera2):
    """fer-pi --camera picam --idle-fps 2 with a stand-in camera that never shows a face:
    health (JSON and Prometheus) turns idle after source.idle_after_s, and the run ends
    cleanly."""
    import json
    import signal
    import time

    from conftest import spawn

    cfg = tmp_path / "c.toml"
    health, prom = tmp_path / "h.json", tmp_path / "m.prom"
    cfg.write_text(f'[source]\ncamera = "picam"\nidle_fps = 2\nidle_after_s = 1\n'
                   f'[health]\nstate_file = "{health}"\nmetrics_file = "{prom}"\n'
                   'interval_s = 0.5\n')
    proc = spawn("--config", str(cfg), "--headless", env={"PYTHONPATH": str(stub_picamera2)})
    try:
        deadline, snap = time.monotonic() + 60, {}
        while time.monotonic() < deadline and not snap.get("idle"):
            time.sleep(0.2)
            if health.exists():
                snap = json.loads(health.read_text())
        assert snap.get("idle") is True and snap["camera"]["state"] == "running"
        deadline = time.monotonic() + 5  # the .prom file is written beside it
        while time.monotonic() < deadline and "fer_pi_idle 1" not in prom.read_text():
            time.sleep(0.2)
        assert "fer_pi_idle 1" in prom.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "no face for 1 s: idle, 2 frames a second" in err


class EmptyRoom:
    """A live camera that shows an empty room for ever."""

    name, corrupt_frames = "empty room", 0

    def __init__(self):
        self.i, self.image = 0, background(640, 480)

    def open(self) -> None:
        pass

    def read(self) -> Frame:
        self.i += 1
        return Frame(self.i - 1, float(self.i), self.image, self.name)

    def close(self) -> None:
        pass


def test_esc_quits_during_a_long_idle_wait():
    """At idle_fps 0.2 the loop waits 5 s between frames; the board's keys are read while it
    waits, so Esc quits then rather than after the next frame (a real pygame window on
    SDL's dummy driver, the real pipeline)."""
    import threading

    import pygame

    from fer_pi.board.display import PygameDisplay

    display = PygameDisplay(("a",) * 7, fullscreen=False, window_size=(320, 240))
    display.open()
    stop = threading.Event()
    pacer = IdlePacer(fps=0.2, after_s=0.0)  # idle from the first frame: 5 s to the next

    def press_esc(result, stats) -> None:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))

    try:
        stats = run(EmptyRoom(), build(Config()), show=display.show, stop=stop,
                    after=[press_esc], pace=pacer.wait_s, poll=display.handle_events)
    finally:
        display.close()
    # quit within the first wait: the second frame was never read (without the key polling
    # the loop sleeps 5 s, reads frame 2, and only its draw sees the Esc)
    assert stop.is_set() and stats.frames == 1 and pacer.idle

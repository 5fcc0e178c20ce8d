"""Appliance behaviour: sd_notify over a real socket, health files, camera loss, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_cli

from fer_pi.app.assemble import build
from fer_pi.app.config import Config
from fer_pi.app.loop import run
from fer_pi.outputs.health import HealthState, HealthWriter
from fer_pi.outputs.notify import Notifier
from fer_pi.sources import ResilientSource, SourceError, VideoFile


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def drain(sock, seconds: float) -> list[tuple[float, str]]:
    end = time.monotonic() + seconds
    out = []
    while time.monotonic() < end:
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            continue
        out.append((time.monotonic(), msg))  # stamped on arrival, not before the wait
    return out


@pytest.mark.parametrize("case", ["outside its hours", "camera gives no frames"])
def test_ready_within_5_s_while_waiting_on_purpose(tmp_path, stub_picamera2, case):
    """Type=notify with TimeoutStartSec: a unit started at night (outside source.hours) or
    with a camera that does not deliver yet must still say READY=1, or systemd kills and
    restarts it every two minutes all night."""
    from datetime import datetime, timedelta

    from conftest import spawn

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    now = datetime.now()
    args = ["--camera", "picam", "--headless"]
    env = {"PYTHONPATH": str(stub_picamera2), "NOTIFY_SOCKET": str(path)}
    if case == "outside its hours":
        args += ["--hours", f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M}"]
    else:
        env["STUB_PICAMERA2_NO_FRAMES"] = "1"
    start = time.monotonic()
    proc = spawn(*args, env=env)
    try:
        got = []
        while time.monotonic() - start < 5 and not any("READY=1" in m for m in got):
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                pass
        assert any("READY=1" in m for m in got), (case, got)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        sock.close()
    assert proc.returncode == 0, err


class StallingSource:
    """Real frames from a clip, then read() blocks: the loop hangs as a wedged driver would."""

    def __init__(self, path: Path, frames_before_stall: int):
        self.inner = VideoFile(path, loop=True)
        self.left = frames_before_stall
        self.release = threading.Event()
        self.name, self.corrupt_frames = "stalling", 0

    def open(self):
        self.inner.open()

    def read(self):
        if self.left <= 0:
            self.release.wait()
            return None
        self.left -= 1
        time.sleep(0.01)
        return self.inner.read()

    def close(self):
        self.inner.close()


def test_ready_after_first_frame_watchdog_while_flowing_none_when_stalled(
        notify_socket, monkeypatch, clips):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2: ping every <= 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = Notifier()
    source = StallingSource(clips["moving"], frames_before_stall=40)
    source.open()
    pipeline = build(Config())
    first_frame_done = []

    def after(result, stats):
        if not first_frame_done:
            first_frame_done.append(time.monotonic())
        notifier.frame_done(stats.fps, len(result.faces))

    loop = threading.Thread(target=run, args=(source, pipeline),
                            kwargs={"after": [after]}, daemon=True)
    start = time.monotonic()
    loop.start()
    msgs = []
    while source.left > 0 and time.monotonic() - start < 60:
        msgs += drain(notify_socket, 0.1)
    assert source.left == 0, "the loop read every frame before the stall"
    msgs += drain(notify_socket, 0.2)  # one ping may be in flight at the stall
    after_stall = drain(notify_socket, 1.0)
    source.release.set()
    loop.join(5)

    assert msgs and "READY=1" in msgs[0][1], "READY comes first"
    # nothing called notifier.ready() here (the app does, once set up): the first frame does
    assert msgs[0][0] >= first_frame_done[0] - 0.01, "READY at the first frame"
    assert "STATUS=running:" in msgs[0][1] and "FPS" in msgs[0][1]
    pings = [t for t, m in msgs if "WATCHDOG=1" in m]
    assert len(pings) >= 3, "WATCHDOG while frames flow"
    assert not [m for _, m in after_stall if "WATCHDOG=1" in m], "no WATCHDOG once stalled"


def test_fer_pi_process_notifies_systemd(notify_socket, clips):
    proc = subprocess.Popen([sys.executable, "-m", "fer_pi.app.cli", "--video", str(clips["moving"]),
                             "--headless", "--loop"], env={**os.environ,
                                                           "WATCHDOG_USEC": "1000000"},
                            stderr=subprocess.PIPE, text=True)
    try:
        msgs = [m for _, m in drain(notify_socket, 6.0)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    text = "\n".join(msgs)
    assert "READY=1" in text and "WATCHDOG=1" in text and "STATUS=" in text
    assert proc.returncode == 0


class FlakyCamera:
    """Frames from a clip; 'unplugged' after a few, absent for a while, then back."""

    plan: list[str] = []

    def __init__(self, path: Path, frames: int):
        self.inner = VideoFile(path, loop=True)
        self.frames = frames
        self.name, self.corrupt_frames = "flaky camera", 0

    def open(self):
        step = FlakyCamera.plan.pop(0) if FlakyCamera.plan else "ok"
        if step == "absent":
            raise SourceError("cannot open flaky camera")
        self.inner.open()

    def read(self):
        if self.frames <= 0:
            raise SourceError("flaky camera: no frame (unplugged?)")
        self.frames -= 1
        return self.inner.read()

    def close(self):
        self.inner.close()


def test_lost_camera_is_reopened_with_backoff_and_the_pipeline_resumes(clips, tmp_path):
    FlakyCamera.plan = ["ok", "absent", "absent", "ok"]
    stop = threading.Event()
    waits: list[str] = []
    src = ResilientSource(lambda: FlakyCamera(clips["moving"], 5), stop, max_backoff_s=0.2,
                          first_backoff_s=0.05)
    src.open()
    state = HealthState(model="seed")
    health = HealthWriter(str(tmp_path / "health.json"), str(tmp_path / "m.prom"), 0.0, state)
    frames = []

    def after(result, stats):
        state.camera_reconnects = src.reconnects
        state.camera_state = src.state
        state.update(stats.fps, len(result.faces), stats.frames, stats.mean_ms())
        health.maybe_write()

    t0 = time.monotonic()
    stats = run(src, build(Config()), sinks=[frames.append], stop=stop, max_frames=12,
                after=[after], waits=[lambda wait, _stats: waits.append(wait.message)])
    src.close()
    assert stats.frames == 12
    assert [f.frame.index for f in frames] == list(range(12)), "indices continue across reopen"
    assert src.reconnects == 2  # lost after 5, reopened (two failed tries), lost again, back
    assert waits and all(w.startswith("camera lost, retrying") for w in waits)
    assert time.monotonic() - t0 < 30
    snap = json.loads((tmp_path / "health.json").read_text())
    assert snap["camera"] == {"state": "running", "reconnects": 2}
    prom = (tmp_path / "m.prom").read_text()
    assert "fer_pi_camera_reconnects_total 2" in prom


def test_prometheus_text_parses(tmp_path):
    parser = pytest.importorskip("prometheus_client.parser",
                                 reason="prometheus_client checks the exposition format")
    state = HealthState(model="seed", camera_state="running")
    health = HealthWriter("", str(tmp_path / "m.prom"), 0.0, state)
    state.update(24.5, 2, 100, {"detect": 12.0, "infer": 0.6},
                 {"faces": 2, "dominant": "happy", "counts": {"happy": 2, "sad": 0}})
    health.maybe_write()
    families = {f.name: f for f in parser.text_string_to_metric_families(
        (tmp_path / "m.prom").read_text())}
    assert families["fer_pi_fps"].samples[0].value == 24.5
    stages = {s.labels["stage"]: s.value for s in families["fer_pi_stage_latency_ms"].samples}
    assert stages == {"detect": 12.0, "infer": 0.6}
    by = {s.labels["emotion"]: s.value for s in families["fer_pi_faces_by_emotion"].samples}
    assert by == {"happy": 2, "sad": 0}


def test_sigterm_stops_cleanly_with_results_intact(clips, tmp_path):
    out = tmp_path / "r.jsonl"
    health = tmp_path / "h.json"
    proc = subprocess.Popen([sys.executable, "-m", "fer_pi.app.cli", "--video", str(clips["two"]),
                             "--loop", "--headless", "--output", str(out), "--health-file",
                             str(health)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 20000):
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    assert time.monotonic() - t0 < 1.5, "stops within about a second"
    assert proc.returncode == 0, proc.stderr.read()
    lines = out.read_text().splitlines()
    assert len(lines) > 5
    recs = [json.loads(x) for x in lines]  # every line, the last included, is valid
    assert [r["frame"] for r in recs] == list(range(len(recs)))
    assert json.loads(health.read_text())["camera"]["state"] == "ended"


def test_sigint_too(clips, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "fer_pi.app.cli", "--video", str(clips["two"]),
                             "--loop", "--headless"], stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr.read()


def test_check_config_accepts_health_settings_and_refuses_bad_ones(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[health]\nstate_file = "{tmp_path / "h.json"}"\nmetrics_file = '
                   f'"{tmp_path / "m.prom"}"\ninterval_s = 2.5\n')
    proc = run_cli("--config", str(cfg), "--check-config")
    assert proc.returncode == 0 and proc.stdout.startswith("config OK"), proc.stderr
    printed = run_cli("--config", str(cfg), "--print-config").stdout
    assert "interval_s = 2.5" in printed and str(tmp_path / "h.json") in printed
    cfg.write_text('[health]\nstate_file = "/tmp/x.json"\ninterval_s = 0.1\n')
    proc = run_cli("--config", str(cfg), "--check-config")
    assert proc.returncode == 2 and "health.interval_s = 0.1 is out of range" in proc.stderr


def _status_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "status-http" and t.is_alive()]


@pytest.mark.parametrize("case", ["source cannot open", "screen cannot open"])
def test_whatever_started_is_stopped_when_set_up_fails(tmp_path, clips, monkeypatch, case):
    """Set-up that fails half-way (exit 3, exit 6) leaves nothing running: the status
    server's thread is gone and its port is free again, in this very process."""
    from fer_pi.app import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["--status", "--status-port", str(port), "--output", str(tmp_path / "r.jsonl")]
    if case == "source cannot open":
        args += ["--video", str(tmp_path / "missing.avi"), "--headless"]
        want = 3
    else:
        monkeypatch.setenv("SDL_VIDEODRIVER", "nosuchdriver")
        args += ["--video", str(clips["two"]), "--windowed"]
        want = 6
    before = _status_threads()
    assert cli.main(args) == want
    time.sleep(0.3)
    assert _status_threads() == before
    with socket.socket() as s:  # nobody listens there any more
        s.bind(("127.0.0.1", port))


def test_a_subclass_of_an_expected_error_gets_its_exit_code(clips, monkeypatch):
    """A CameraGone(SourceError) is a source error (exit 3), not a KeyError traceback."""
    from fer_pi.app import cli
    from fer_pi.app.app import App
    from fer_pi.sources import SourceError

    class CameraGone(SourceError):
        pass

    def gone(self):
        raise CameraGone("camera 0 went away")

    monkeypatch.setattr(App, "run", gone)
    assert cli.main(["--video", str(clips["two"]), "--headless"]) == 3

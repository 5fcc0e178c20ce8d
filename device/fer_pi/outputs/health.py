"""Health for people and monitors: a JSON state file and Prometheus textfile metrics.

Both are written atomically (temp file + rename) at an interval, so a reader
never sees half a file; node_exporter's textfile collector can read the .prom.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fer_pi import machine
from fer_pi.core.atomic import write_whole

log = logging.getLogger(__name__)

# temperature and throttling change slowly, and reading throttling runs vcgencmd (a
# process) on a Pi: snapshots, taken by the loop, MQTT and HTTP, reuse a reading this long
THERMAL_MAX_AGE_S = 5.0


@dataclass
class HealthState:
    """What the loop knows about itself, shared with readers on other threads (the
    status endpoint, MQTT): the loop calls ``update`` once a frame, readers call
    ``snapshot``. The App's services (app.services: LoopFacts, Health) set the camera
    fields from the loop's frames and waits."""

    camera_state: str = "starting"  # starting, running, lost, retrying, closed, ended
    camera_reconnects: int = 0
    idle: bool = False  # no face for a while: the loop runs at source.idle_fps
    screen: str = "none"  # on; waiting (board.screen_retry_s: not found yet); none (headless)
    corrupt_frames: int = 0
    model: str = ""
    hours: str = ""  # source.hours as set ('' : always open)
    opens_at: str | None = None  # while closed outside them: when they begin (ISO, local)
    started: float = field(default_factory=time.monotonic)  # uptime must not step with NTP
    fps: float = 0.0
    faces: int = 0
    frames: int = 0
    stage_ms: dict[str, float] = field(default_factory=dict)
    room: dict = field(default_factory=dict)  # events.room_summary of the latest frame
    # while MQTT is enabled: the publisher's link() ({"connected", "dropped"}), read live
    mqtt: Callable[[], dict] | None = field(default=None, repr=False, compare=False)
    # while results are written: the writer's status() ({"path", "records", "not_written"})
    output: Callable[[], dict] | None = field(default=None, repr=False, compare=False)
    # while the status endpoint runs: its connection counters (status.Counters)
    status_server: Callable[[], dict] | None = field(default=None, repr=False, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _thermal: dict | None = field(default=None, repr=False, compare=False)
    _thermal_at: float = field(default=0.0, repr=False, compare=False)

    def update(self, fps: float, faces: int, frames: int, stage_ms: dict[str, float],
               room: dict | None = None) -> None:
        with self.lock:
            self.fps, self.faces, self.frames, self.stage_ms = fps, faces, frames, dict(stage_ms)
            if room is not None:
                self.room = room

    def thermal(self) -> dict:
        now = time.monotonic()
        if self._thermal is None or now - self._thermal_at > THERMAL_MAX_AGE_S:
            self._thermal, self._thermal_at = machine.thermal(), now
        return self._thermal

    def snapshot(self) -> dict:
        with self.lock:  # only the copy: the snapshot itself may read files
            figures = self.fps, self.faces, self.frames, self.stage_ms
        return snapshot(self, *figures)


def write_atomic(path: Path, text: str) -> None:
    write_whole(path, text.encode("utf-8"), sync=True)


def _throttled_int(text: str | None) -> int | None:
    try:
        return int(text, 16) if text else None
    except ValueError:
        return None


def snapshot(state: HealthState, fps: float, faces: int, frames: int,
             stage_ms: dict[str, float]) -> dict:
    th = state.thermal()
    return {
        "time": round(time.time(), 3),
        "uptime_s": round(time.monotonic() - state.started, 1),
        "fps": round(fps, 2),
        "faces": faces,
        "frames": frames,
        "stage_ms": {k: round(v, 3) for k, v in stage_ms.items()},
        "camera": {"state": state.camera_state, "reconnects": state.camera_reconnects},
        "idle": state.idle,
        "screen": state.screen,
        "corrupt_frames": state.corrupt_frames,
        "model": state.model,
        "hours": {"open": state.hours, "opens_at": state.opens_at},
        "room": state.room,
        "mqtt": state.mqtt() if state.mqtt is not None else None,
        "output": state.output() if state.output is not None else None,
        "status_server": state.status_server() if state.status_server is not None else None,
        "temperature_c": th["temperature_c"],
        "throttled": th["throttled"],
    }


def prometheus(snap: dict) -> str:
    """Prometheus text exposition format, version 0.0.4."""
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP fer_pi_{name} {help_}")
        out.append(f"# TYPE fer_pi_{name} {kind}")
        for labels, value in samples:
            out.append(f"fer_pi_{name}{labels} {value}")

    metric("up", "gauge", "1 while the pipeline loop runs", [("", 1)])
    metric("uptime_seconds", "gauge", "Seconds since start", [("", snap["uptime_s"])])
    metric("fps", "gauge", "Frames per second over the recent window", [("", snap["fps"])])
    metric("faces", "gauge", "Faces in the latest frame", [("", snap["faces"])])
    metric("frames_total", "counter", "Frames processed", [("", snap["frames"])])
    metric("stage_latency_ms", "gauge", "Mean per-stage latency over the recent window",
           [(f'{{stage="{k}"}}', v) for k, v in snap["stage_ms"].items()])
    metric("camera_up", "gauge", "1 while frames arrive",
           [("", 1 if snap["camera"]["state"] == "running" else 0)])
    metric("camera_reconnects_total", "counter", "Times the source was reopened",
           [("", snap["camera"]["reconnects"])])
    metric("idle", "gauge", "1 while the loop runs at the idle rate (no face for a while)",
           [("", int(snap.get("idle", False)))])
    metric("screen_up", "gauge", "1 while the board is on a screen (0: headless, or waiting "
           "for one)", [("", int(snap.get("screen") == "on"))])
    metric("corrupt_frames_total", "counter", "Frames skipped as unreadable",
           [("", snap["corrupt_frames"])])
    counts = (snap.get("room") or {}).get("counts") or {}
    if counts:
        metric("faces_by_emotion", "gauge", "Faces in the latest frame by the label shown",
               [(f'{{emotion="{k}"}}', v) for k, v in counts.items()])
    if snap.get("mqtt") is not None:
        metric("mqtt_connected", "gauge", "1 while connected to the MQTT broker",
               [("", int(snap["mqtt"]["connected"]))])
        metric("mqtt_dropped_total", "counter", "MQTT messages dropped: queue full while the "
               "broker was away", [("", snap["mqtt"]["dropped"])])
    if snap.get("output") is not None:
        metric("output_records_total", "counter", "Frame records written to the results file",
               [("", snap["output"]["records"])])
        metric("output_not_written_total", "counter", "Frame records lost: the results file "
               "could not be written or opened (a full card?)",
               [("", snap["output"]["not_written"])])
    if snap.get("status_server") is not None:
        conns = snap["status_server"]
        for key, help_ in (("served", "Requests the status endpoint answered"),
                           ("refused", "Connections refused at once: too many open"),
                           ("timed_out", "Connections closed: request or reply too slow"),
                           ("evicted", "Idle connections closed to make room for new ones"),
                           ("disconnected", "Clients gone before their reply was out"),
                           ("too_large", "Requests refused: head over 8 KiB")):
            metric(f"status_{key}_total", "counter", help_, [("", conns[key])])
    if snap["temperature_c"] is not None:
        metric("temperature_celsius", "gauge", "SoC temperature", [("", snap["temperature_c"])])
    thr = _throttled_int(snap["throttled"])
    if thr is not None:
        metric("throttled", "gauge", "vcgencmd get_throttled bits (0: healthy)", [("", thr)])
    return "\n".join(out) + "\n"


class HealthWriter:
    def __init__(self, state_file: str, metrics_file: str, interval_s: float,
                 state: HealthState):
        self.state_path = Path(state_file) if state_file else None
        self.metrics_path = Path(metrics_file) if metrics_file else None
        self.interval_s = interval_s
        self.state = state
        self._last = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.state_path or self.metrics_path)

    def maybe_write(self, force: bool = False) -> None:
        """Write the state's latest figures, at most once per interval unless forced."""
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.interval_s):
            return
        self._last = now
        snap = self.state.snapshot()
        try:
            if self.state_path:
                write_atomic(self.state_path, json.dumps(snap, indent=1) + "\n")
            if self.metrics_path:
                write_atomic(self.metrics_path, prometheus(snap))
        except OSError as exc:  # a full disk must not stop the board
            log.error("cannot write health files: %s", exc)

"""Opening hours (source.hours): the camera is closed outside them and the board says
when it opens; a camera that comes back at opening time is not a reconnect."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from conftest import ClockEvent, FakeClock, next_frame

from fer_pi.app.config import ConfigError, from_dict
from fer_pi.core.records import Frame
from fer_pi.sources import ResilientSource
from fer_pi.sources.hours import Hours


class Camera:
    """A camera whose every frame takes a second of the test's time."""

    opened = 0
    closed = 0

    def __init__(self, clock: FakeClock):
        self.clock, self.name, self.corrupt_frames, self.count = clock, "cam", 0, 0

    def open(self) -> None:
        Camera.opened += 1

    def read(self) -> Frame:
        self.clock.t += timedelta(seconds=1)
        self.count += 1
        return Frame(self.count, self.clock.t.timestamp(), np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        Camera.closed += 1


@pytest.mark.parametrize("text, inside, outside", [
    ("08:00-18:00", ["08:00", "12:00", "17:59"], ["07:59", "18:00", "23:30"]),
    ("22:00-06:00", ["22:00", "23:59", "00:00", "05:59"], ["06:00", "12:00", "21:59"]),
    ("8:00-12:00, 13:00-17:00", ["08:30", "13:00"], ["12:00", "12:59", "17:00"]),
])
def test_hours_parse_and_contain(text, inside, outside):
    hours = Hours.parse(text)
    day = datetime(2026, 11, 26)

    def at(hm):
        h, m = map(int, hm.split(":"))
        return day.replace(hour=h, minute=m)

    assert all(hours.is_open(at(x)) for x in inside)
    assert not any(hours.is_open(at(x)) for x in outside)
    for x in outside:  # the next opening is open, and every minute before it is closed
        nxt = hours.next_open(at(x))
        assert hours.is_open(nxt) and not hours.is_open(nxt - timedelta(minutes=1))


# 2026-11-27 is a Friday
@pytest.mark.parametrize("text, inside, outside", [
    ("Mon-Fri 08:00-18:00", ["Fri 08:00", "Mon 17:59", "Wed 12:00"],
     ["Fri 18:00", "Sat 12:00", "Sun 09:00", "Mon 07:59"]),
    ("Tue-Sun 10:00-17:00", ["Sun 10:00", "Tue 16:59"], ["Mon 12:00", "Tue 09:59"]),
    # a span across midnight belongs to the day it starts: Friday night runs into Saturday
    ("Fri-Sat 22:00-02:00", ["Fri 23:00", "Sat 01:59", "Sun 01:00"],
     ["Fri 01:00", "Sun 22:30", "Mon 01:00"]),
    ("Sat-Mon 09:00-12:00, mon-fri 13:00-17:00", ["Sun 09:00", "Mon 11:00", "Mon 13:00",
                                                  "Thu 16:00"], ["Sat 13:00", "Tue 11:00"]),
])
def test_hours_on_some_days(text, inside, outside):
    hours = Hours.parse(text)
    friday = datetime(2026, 11, 27)

    def at(spec):
        day, hm = spec.split()
        h, m = map(int, hm.split(":"))
        offset = (("Fri", "Sat", "Sun", "Mon", "Tue", "Wed", "Thu").index(day))
        return (friday + timedelta(days=offset)).replace(hour=h, minute=m)

    assert all(hours.is_open(at(x)) for x in inside), text
    assert not any(hours.is_open(at(x)) for x in outside), text
    for x in outside:
        nxt = hours.next_open(at(x))
        assert hours.is_open(nxt) and not hours.is_open(nxt - timedelta(minutes=1))


def test_closed_for_the_weekend_says_the_day():
    from fer_pi.sources.hours import when

    hours = Hours.parse("Mon-Fri 08:00-18:00")
    friday_evening = datetime(2026, 11, 27, 18, 0)
    opens = hours.next_open(friday_evening)
    assert opens == datetime(2026, 11, 30, 8, 0) and when(opens, friday_evening) == "Mon 08:00"
    thursday_evening = datetime(2026, 11, 26, 18, 0)
    assert when(hours.next_open(thursday_evening), thursday_evening) == "08:00"
    # in the room's language (board.words days)
    from fer_pi.core.words import parse_words

    days = tuple(parse_words("days=Mo Di Mi Do Fr Sa So")["days"].split())
    assert when(opens, friday_evening, days) == "Mo 08:00"


@pytest.mark.parametrize("bad, needle", [("Mon-Fry 08:00-18:00", "'fry' is not a day"),
                                         ("Monday 08:00-18:00", "not \\[days\\]")])
def test_bad_days_are_refused_naming_the_key(bad, needle):
    with pytest.raises(ConfigError, match=f"source.hours.*{needle}"):
        from_dict({"source": {"hours": bad}})


@pytest.mark.parametrize("bad", ["9-17", "08:00", "25:00-26:00", "08:00-08:00", "08:00-18:00,x"])
def test_bad_hours_are_refused_naming_the_key(bad):
    with pytest.raises(ConfigError, match="source.hours"):
        from_dict({"source": {"hours": bad}})


def test_the_camera_closes_at_closing_time_and_opens_at_opening_time():
    Camera.opened = Camera.closed = 0
    clock = FakeClock(datetime(2026, 11, 26, 17, 59, 50))
    stop, waits = ClockEvent(clock), []
    src = ResilientSource(lambda: Camera(clock), stop, hours=Hours.parse("09:00-18:00"),
                          now=clock)
    src.open()
    frames = [next_frame(src, waits) for _ in range(10)]  # read at 17:59:50 .. 17:59:59
    assert all(f is not None for f in frames) and src.state == "running"
    nxt = next_frame(src, waits)  # 18:00: closed until 09:00, then open again
    assert Camera.closed == 1 and Camera.opened == 2
    assert clock.t >= datetime(2026, 11, 27, 9, 0) and clock.t < datetime(2026, 11, 27, 9, 0, 5)
    assert nxt is not None and nxt.index == 10  # frame numbers go on
    assert waits and set(waits) == {"closed until 09:00"}
    assert src.reconnects == 0 and src.state == "running"


def test_a_school_camera_sleeps_through_the_weekend():
    Camera.opened = Camera.closed = 0
    clock = FakeClock(datetime(2026, 11, 27, 17, 59, 58))  # a Friday
    waits: list[str] = []
    src = ResilientSource(lambda: Camera(clock), ClockEvent(clock),
                          hours=Hours.parse("Mon-Fri 08:00-18:00"), now=clock)
    src.open()
    assert next_frame(src, waits) is not None and next_frame(src, waits) is not None  # 18:00
    assert next_frame(src, waits) is not None  # closed until Monday, then this frame
    assert clock.t.date() == datetime(2026, 11, 30).date() and clock.t.hour == 8
    assert set(waits) == {"closed until Mon 08:00"} and Camera.opened == 2


def test_started_outside_the_hours_the_camera_is_checked_then_closed():
    Camera.opened = Camera.closed = 0
    clock = FakeClock(datetime(2026, 11, 26, 23, 0))
    src = ResilientSource(lambda: Camera(clock), ClockEvent(clock),
                          hours=Hours.parse("07:30-16:00"), now=clock)
    src.open()  # an absent camera would fail here, at start, where the user sees it
    assert (Camera.opened, Camera.closed, src.state) == (1, 1, "closed")
    assert next_frame(src) is not None and clock.t.hour == 7 and clock.t.minute == 30


def test_cli_refuses_bad_hours_before_anything_starts():
    from conftest import run_cli

    proc = run_cli("--camera", "0", "--hours", "9-17", "--headless")
    assert proc.returncode == 2 and "source.hours" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("board", [("--headless",),
                                   ("--windowed", "--words", "closed=geschlossen bis {time}")])
def test_a_real_process_outside_its_hours_closes_the_camera_and_says_so(tmp_path,
                                                                       stub_picamera2, board):
    """fer-pi --camera picam --hours <a span that is not now>: the camera is opened once
    (checked), closed, and health says closed until SIGTERM ends the run cleanly; with a
    board (SDL's dummy driver) its banner is drawn in the room's words meanwhile."""
    import json
    import signal
    import time

    from conftest import spawn

    now = datetime.now()
    span = f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M}"
    health = tmp_path / "health.json"
    proc = spawn("--camera", "picam", "--hours", span, *board, "--health-file",
                 str(health), "--output", str(tmp_path / "r.jsonl"),
                 env={"PYTHONPATH": str(stub_picamera2)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not health.exists():
            time.sleep(0.1)
        snap = json.loads(health.read_text())
        assert snap["camera"]["state"] == "closed" and snap["frames"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.count("stub camera started") == 1 and out.count("stub camera stopped") == 1
    assert "camera closed until" in err and span.split("-")[0] in err
    assert (tmp_path / "r.jsonl").read_text() == ""  # nothing captured, nothing written


class FakeRun:
    """subprocess.run as cec-ctl would answer it; records each command."""

    def __init__(self, returncode: int = 0):
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, cmd, **_kw):
        import subprocess

        self.calls.append(cmd[3:])  # after cec-ctl -d DEV
        return subprocess.CompletedProcess(cmd, self.returncode, "", "no TV on the bus\n")


def test_the_screen_sleeps_while_closed_and_wakes_when_the_hours_begin(caplog):
    from fer_pi.board.tvpower import CecScreen

    run = FakeRun()
    tv = CecScreen("/dev/cec0", run=run)
    tv.follow("running")  # open at start: nothing to do
    for state in ("closed", "closed", "closed"):  # a Wait, once a second all night
        tv.follow(state)
    tv.follow("retrying")  # a lost camera is not a closed room
    tv.follow("running")
    tv.follow("running")
    tv.settle()
    assert run.calls == [["--playback"], ["--to", "0", "--standby"],
                         ["--to", "0", "--image-view-on"]]


def test_a_tv_that_ignores_cec_is_asked_once_and_never_stops_the_board(caplog):
    import logging

    from fer_pi.board.tvpower import CecScreen

    run = FakeRun(returncode=1)
    tv = CecScreen("/dev/cec0", run=run)
    with caplog.at_level(logging.WARNING, logger="fer_pi.board.tvpower"):
        for _ in range(5):
            tv.follow("closed")
        tv.settle()
    assert run.calls == [["--playback"]] and "no TV on the bus" in caplog.text
    missing = CecScreen("/dev/cec0", run=lambda *a, **k: (_ for _ in ()).throw(
        FileNotFoundError("cec-ctl")))
    missing.follow("closed")  # logged, not raised
    missing.settle()


def test_a_cec_bus_that_hangs_never_stalls_the_loop(tmp_path):
    """cec-ctl that takes 20 s (a bus with no answer; the real timeout is 10 s a command, two
    commands at the first standby) under WatchdogSec=30: follow() returns at once."""
    import subprocess
    import time

    from fer_pi.board.tvpower import CecScreen

    stub = tmp_path / "cec-ctl"
    stub.write_text("#!/bin/sh\nsleep 20\n")
    stub.chmod(0o755)

    def run(cmd, **kw):
        return subprocess.run([str(stub), *cmd[1:]], **kw)

    tv = CecScreen("/dev/cec0", run=run, timeout_s=10.0)
    t0 = time.monotonic()
    tv.follow("closed")
    tv.follow("running")
    assert time.monotonic() - t0 < 0.5
    tv.close(timeout_s=0.1)


def test_cec_settings_are_checked_before_start(tmp_path, monkeypatch):
    from fer_pi.app.config import ConfigError, from_dict

    dev = tmp_path / "cec0"
    dev.touch()
    with pytest.raises(ConfigError, match="needs|source.hours"):
        from_dict({"board": {"cec_device": str(dev)}})
    with pytest.raises(ConfigError, match="no such device"):
        from_dict({"board": {"cec_device": str(tmp_path / "cec9")},
                   "source": {"hours": "08:00-18:00"}})
    monkeypatch.setenv("PATH", str(tmp_path))  # no cec-ctl anywhere
    with pytest.raises(ConfigError, match="apt install v4l-utils"):
        from_dict({"board": {"cec_device": str(dev)}, "source": {"hours": "08:00-18:00"}})


def test_a_real_process_puts_the_screen_in_standby_outside_its_hours(tmp_path, stub_picamera2):
    """fer-pi with a board, source.hours not now and board.cec_device: cec-ctl (a stand-in
    on PATH that logs its arguments) configures the adapter and sends standby once."""
    import os
    import signal
    import time

    from conftest import spawn

    bin_dir, log = tmp_path / "bin", tmp_path / "cec.log"
    bin_dir.mkdir()
    stub = bin_dir / "cec-ctl"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    stub.chmod(0o755)
    dev = tmp_path / "cec0"
    dev.touch()
    now = datetime.now()
    span = f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M}"
    proc = spawn("--camera", "picam", "--hours", span, "--windowed", "--cec-device", str(dev),
                 env={"PYTHONPATH": str(stub_picamera2),
                      "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "standby" not in (
                log.read_text() if log.exists() else ""):
            time.sleep(0.1)
        time.sleep(1.5)  # a Wait comes once a second: still one standby
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert log.read_text().splitlines() == [f"-d {dev} --playback", f"-d {dev} --to 0 --standby"]

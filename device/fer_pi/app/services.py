"""What listens to the loop: each service hears about every finished frame, every second of
a deliberate wait (the camera closed outside its hours, or being retried), and the stop.

The App (app.py) builds them from the settings and calls them in order; none of them
knows about another. Their shared facts live in one HealthState.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from fer_pi.core.records import FrameResult, Wait, room_summary
from fer_pi.core.stats import RunStats
from fer_pi.outputs.health import HealthState, HealthWriter
from fer_pi.outputs.notify import Notifier
from fer_pi.outputs.roomlog import RoomLog
from fer_pi.sources.hours import when

log = logging.getLogger(__name__)


class Service(Protocol):
    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        """A frame is done (shown and written)."""

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        """At least once a second while the camera waits, instead of frames."""


class Health:
    """The shared state, and the files (JSON, Prometheus) written from it."""

    def __init__(self, state: HealthState, writer: HealthWriter, labels: tuple[str, ...]):
        self.state, self.writer, self.labels = state, writer, labels

    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        self.state.update(stats.fps, len(result.faces), stats.frames, stats.mean_ms(),
                          result.room or room_summary(result.faces, self.labels))
        self.writer.maybe_write()

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        self.state.camera_state = wait.state  # retrying, or closed outside source.hours
        self.state.opens_at = (wait.opens_at.isoformat(timespec="minutes")
                               if wait.state == "closed" and wait.opens_at else None)
        # frames_total is a Prometheus counter: it must not fall back to 0 while waiting
        self.state.update(0.0, 0, stats.frames, {}, room_summary((), self.labels))
        self.writer.maybe_write()

    def finish(self, stats: RunStats) -> None:
        self.state.update(stats.fps, 0, stats.frames, stats.mean_ms(),
                          room_summary((), self.labels))
        self.writer.maybe_write(force=True)


class Systemd:
    """READY once set up, WATCHDOG while frames flow or a wait goes on, STOPPING at the end."""

    def __init__(self, notifier: Notifier):
        self.notifier = notifier

    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        self.notifier.frame_done(stats.fps, len(result.faces))

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        self.notifier.keepalive(wait.message)


class Mqtt:
    """Face events and the room's state: the frame's own room summary, and the health
    snapshot (read after Health has updated it for this frame)."""

    def __init__(self, publisher, state: HealthState, labels: tuple[str, ...]):
        self.publisher, self.state, self.labels = publisher, state, labels

    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        self.publisher.on_frame(result, result.room or room_summary(result.faces, self.labels),
                                self.state.snapshot)

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        # the faces go; the state still goes out
        self.publisher.on_frame(None, room_summary((), self.labels), self.state.snapshot)


class Screen:
    """The board's window: frames are drawn by the loop's show; here only the waits (a
    banner in the room's words, or the dark screen of a closed room) and their end."""

    def __init__(self, display, stop):
        self.display, self.stop = display, stop

    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        self.display.status, self.display.night = "", False

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        d = self.display
        board = d.board
        if wait.state == "closed" and wait.opens_at:
            d.status = board.say("closed", time=when(wait.opens_at, datetime.now(),
                                                     tuple(board.say("days").split())))
        else:
            d.status = board.say("camera_lost", s=f"{wait.retry_in_s:.0f}")
        d.night = wait.state == "closed"
        if not d.show(None, stats):
            self.stop.set()


class TvPower:
    """HDMI-CEC: the screen sleeps while the room is closed and wakes when it opens."""

    def __init__(self, screen):
        self.screen = screen

    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        self.screen.follow("running")

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        self.screen.follow(wait.state)


class Room:
    """The room's page: faces now, the labels' history, and the camera's losses and
    returns as events (a wait's first second, and the first frame after one)."""

    WHAT = {"retrying": "camera lost", "closed": "closed for the night (source.hours)"}

    def __init__(self, room: RoomLog):
        self.room = room
        self._waiting: str | None = None

    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        if self._waiting is not None:
            self.room.note("camera back" if self._waiting == "retrying" else "open (source.hours)")
            self._waiting = None
        self.room.on_frame(result)

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        if self._waiting != wait.state:
            self.room.note(self.WHAT.get(wait.state, wait.state))
            self._waiting = wait.state
            self.room.clear()


class LoopFacts:
    """What the loop itself knows, for health: camera running, idle, screen, counters."""

    def __init__(self, state: HealthState, source, pacer, display):
        self.state, self.source, self.pacer, self.display = state, source, pacer, display

    def on_frame(self, result: FrameResult, stats: RunStats) -> None:
        st = self.state
        st.camera_state = "running"
        st.opens_at = None
        st.idle = self.pacer is not None and self.pacer.idle
        st.screen = self.display.state if self.display is not None else "none"
        st.camera_reconnects = getattr(self.source, "reconnects", 0)
        st.corrupt_frames = self.source.corrupt_frames

    def on_wait(self, wait: Wait, stats: RunStats) -> None:
        pass

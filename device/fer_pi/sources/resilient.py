"""A live camera that survives being unplugged, and sleeps outside its opening hours."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

from fer_pi.core.records import Frame, Wait
from fer_pi.sources.base import FrameSource, SourceError
from fer_pi.sources.hours import Hours, when

log = logging.getLogger(__name__)


class ResilientSource:
    """A live camera that survives being unplugged: on loss it closes, waits with
    exponential backoff and reopens, until frames come back or ``stop`` is set.

    While it waits, ``read()`` returns a Wait at least once a second instead of a frame
    (the loop hands it to the board's banner, the watchdog and health), so a deliberate
    wait never looks like a hang, and the source never calls the display.

    With ``hours`` (hours.Hours) the camera is closed outside them (state "closed") and
    opened again when they begin, without counting that as a reconnect.
    """

    def __init__(self, make: Callable[[], FrameSource], stop: threading.Event,
                 max_backoff_s: float = 10.0, first_backoff_s: float = 0.5, hours: Hours | None = None,
                 now: Callable[[], datetime] = datetime.now):
        self.hours, self.now = hours, now
        self.make, self.stop = make, stop
        self.max_backoff_s, self.first_backoff_s = max_backoff_s, first_backoff_s
        self.inner: FrameSource | None = None
        self.name = "camera"
        self.count = 0
        self.reconnects = 0
        self.state = "starting"
        self.opens_at: datetime | None = None
        self.retry_in_s = 0.0
        self._items: Iterator[Frame | Wait] | None = None

    @property
    def corrupt_frames(self) -> int:
        return self.inner.corrupt_frames if self.inner else 0

    def open(self) -> None:
        self.inner = self.make()
        self.inner.open()  # a camera absent at start is an error the user must see
        self.name = self.inner.name
        self.state = "running"
        if self._closed_now():  # it is there; now close it until the hours begin
            self._close_inner()
            self.state = "closed"

    def _closed_now(self) -> bool:
        return self.hours is not None and not self.hours.is_open(self.now())

    def _wait_for_hours(self) -> Iterator[Wait]:
        self._close_inner()
        self.state = "closed"
        now = self.now()
        self.opens_at = self.hours.next_open(now)
        until = when(self.opens_at, now)  # "08:00", or "Mon 08:00" over a weekend
        log.info("outside source.hours (%s): camera closed until %s", self.hours, until)
        while not self.stop.is_set() and self._closed_now():
            yield Wait(f"closed until {until}", "closed", opens_at=self.opens_at)
            self.stop.wait(1.0)
        if not self.stop.is_set():
            yield from self._reconnect(try_now=True, counted=False)

    def read(self) -> Frame | Wait | None:
        """The next frame; a Wait while the camera is closed or being retried; None once
        the source has ended or ``stop`` is set."""
        if self._items is None:
            self._items = self._run()
        return next(self._items, None)

    def _run(self) -> Iterator[Frame | Wait]:
        while not self.stop.is_set():
            if self._closed_now():
                yield from self._wait_for_hours()
                continue
            try:
                frame = self.inner.read() if self.inner else None
            except SourceError as exc:
                log.warning("%s; reopening with backoff", exc)
                self.state = "lost"
                yield from self._reconnect()
                continue
            if frame is None:
                self.state = "ended"
                return
            self.state = "running"
            frame = replace(frame, index=self.count)
            self.count += 1
            yield frame

    def _reconnect(self, try_now: bool = False, counted: bool = True) -> Iterator[Wait]:
        self._close_inner()
        delay = self.first_backoff_s
        while not self.stop.is_set():
            self.state = "retrying"
            deadline = time.monotonic() + (0.0 if try_now else delay)
            try_now = False
            while not self.stop.is_set() and time.monotonic() < deadline:
                left = deadline - time.monotonic()
                self.retry_in_s = max(0.0, left)
                yield Wait(f"camera lost, retrying in {max(0, left):.0f} s", "retrying",
                           retry_in_s=self.retry_in_s)
                self.stop.wait(min(1.0, max(0.0, left)))
            if self.stop.is_set():
                return
            try:
                src = self.make()
                src.open()
            except SourceError as exc:
                log.info("reopen failed: %s", exc)
                delay = min(self.max_backoff_s, delay * 2)
                continue
            self.inner = src
            if counted:
                self.reconnects += 1
                log.warning("%s is back (reconnect %d)", src.name, self.reconnects)
            else:
                log.info("%s open: source.hours began", src.name)
            return

    def _close_inner(self) -> None:
        if self.inner is not None:
            try:
                self.inner.close()
            except Exception as exc:  # noqa: BLE001 - a dead device may fail to close too
                log.debug("close after loss failed: %s", exc)
            self.inner = None

    def close(self) -> None:
        self._close_inner()

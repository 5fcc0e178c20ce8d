"""A recorded source played at its own frame rate, as a camera gives frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fer_pi.core.records import Frame
from fer_pi.sources.base import FrameSource, Wrapped


class Paced(Wrapped):
    """Hands each frame over no sooner than its clip time after the first: a kiosk looping
    a clip, or a page watching a replayed room, sees the room at the pace it was filmed
    instead of as fast as the file decodes. A loop slower than the clip is never made to
    wait (nor to skip: every frame is still read). Waits end early when ``stop`` is set."""

    def __init__(self, inner: FrameSource, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(inner)
        self.stop, self.clock = stop or threading.Event(), clock
        self._start: tuple[float, float] | None = None  # (wall, clip) of the first frame

    def open(self) -> None:
        super().open()
        self._start = None

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        if self._start is None:
            self._start = (self.clock(), frame.timestamp)
        wall, clip = self._start
        wait = wall + (frame.timestamp - clip) - self.clock()
        if wait > 0:
            self.stop.wait(wait)
        return frame

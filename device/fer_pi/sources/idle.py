"""Idle pacing: an empty room does not need thirty detections a second.

An appliance on a wall runs all day and all night; at full rate a Pi 4 keeps its cores
busy (and warm, and drawing power) for a room with nobody in it. After ``after_s``
seconds without a face the loop reads and processes only ``fps`` frames a second; the
first frame with a face brings the full rate back at once, so a visitor waits at most
one idle period (0.2 s at 5 FPS) before the board follows them. Only live cameras are
paced: a recorded video is read as fast as it can be. The loop (app.loop) does the waiting,
polling the board's keys meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fer_pi.core.records import FrameResult

log = logging.getLogger(__name__)


class IdlePacer:
    """Says how long the loop should wait before it reads the next frame."""

    def __init__(self, fps: float, after_s: float, clock: Callable[[], float] = time.monotonic):
        self.period = 1.0 / fps if fps > 0 else 0.0
        self.fps, self.after_s, self.clock = fps, after_s, clock
        self.idle = False
        self._last_face = self._resumed = clock()

    def wait_s(self, result: FrameResult) -> float:
        now = self.clock()
        if result.faces or result.candidates:  # a face not yet confirmed wakes it too
            self._last_face = now
        idle = self.period > 0 and now - self._last_face >= self.after_s
        if idle != self.idle:
            self.idle = idle
            if idle:
                log.info("no face for %.0f s: idle, %g frames a second until one appears",
                         self.after_s, self.fps)
            else:
                log.info("a face: full rate again")
        if not idle:
            self._resumed = now
            return 0.0
        wait = max(0.0, self.period - (now - self._resumed))
        self._resumed = now + wait
        return wait

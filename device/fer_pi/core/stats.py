"""The run's own figures, shared by the loop, the board's overlay and health."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class RunStats:
    """Rolling figures for the overlay and health; whole-run counts for the summary."""

    frames: int = 0
    faces: int = 0
    window: int = 60
    recent: dict[str, deque] = field(default_factory=dict)
    stamps: deque = field(default_factory=lambda: deque(maxlen=61))

    def add(self, timings: dict[str, float], n_faces: int) -> None:
        self.frames += 1
        self.faces += n_faces
        self.stamps.append(time.perf_counter())
        for k, v in timings.items():
            self.recent.setdefault(k, deque(maxlen=self.window)).append(v)

    @property
    def fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(1e-9, self.stamps[-1] - self.stamps[0])

    def mean_ms(self) -> dict[str, float]:
        return {k: sum(v) / len(v) for k, v in self.recent.items() if v}

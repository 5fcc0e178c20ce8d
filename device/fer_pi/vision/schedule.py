"""Which faces are classified on this frame: each tracked face at most ``max_hz`` times a
second, a new one at once, the faces' turns spread over frames.

Why: a face's label is smoothed over a fraction of a second, so classifying every face (and
its mirror) on every frame buys little the board shows, and on a Pi it is most of the CPU.
Between a face's readings its last one is carried (``Face.fresh`` False) and the smoother
keeps showing its label. Pure: fed track IDs and each frame's time, no clock of its own.
Hand-written: a dozen lines of bookkeeping that no scheduling library fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# a face is due once its period has passed, within this (frame times are sums of floats:
# 0.1 + 0.1 + 0.1 is not 0.3)
EPS_S = 1e-6


@dataclass
class ClassifySchedule:
    max_hz: float  # 0: every face on every frame
    _last: dict[int, float] = field(default_factory=dict)  # track ID -> time of its reading
    _t: float | None = None  # the previous frame's time
    _dt: float = 0.0  # the frame interval, smoothed

    def due(self, ids: Sequence[int | None], t: float) -> list[bool]:
        """Whether each face of this frame is classified now. A face without a track (a
        still, tracking off) and a face not read before are always due; the others once
        their period has passed, at most ``ceil(faces * max_hz * frame interval)`` of them a
        frame, the longest waiting first, so that faces confirmed together do not all fall
        due on the same later frames."""
        if self._t is not None and t > self._t:
            step = t - self._t
            self._dt = step if self._dt <= 0 else 0.8 * self._dt + 0.2 * step
        self._t = t
        if self.max_hz <= 0:
            return [True] * len(ids)
        period = 1.0 / self.max_hz
        out = [tid is None or tid not in self._last or t < self._last[tid] for tid in ids]
        waiting = [(t - self._last[tid], k) for k, tid in enumerate(ids)
                   if not out[k] and t - self._last[tid] >= period - EPS_S]
        if waiting:
            tracked = sum(tid is not None for tid in ids)
            cap = len(waiting) if self._dt <= 0 else \
                max(1, math.ceil(tracked * self.max_hz * self._dt - EPS_S))
            for _, k in sorted(waiting, reverse=True)[:cap]:
                out[k] = True
        return out

    def read(self, tid: int | None, t: float) -> None:
        """The face was classified at ``t``."""
        if tid is not None:
            self._last[tid] = t

    def forget(self, live_ids: set[int]) -> None:
        """Drop faces that left, so memory stays flat on a long run."""
        for tid in [k for k in self._last if k not in live_ids]:
            del self._last[tid]

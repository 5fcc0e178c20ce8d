"""Per-face temporal smoothing with hysteresis, so the shown label does not flicker, in
seconds rather than frames: a face read at 10 FPS on a Pi and at 60 FPS from a file shows
the same labels at the same moments (within a frame's time).

Pure: fed one face's probabilities and the time of each frame, it returns what the board
should show. Chosen on the onset development set (fer_tools.onsets, docs/steadiness.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fer_pi.core.labels import UNCERTAIN


@dataclass(frozen=True)
class SmoothSettings:
    # the average's time constant: a frame dt seconds after the last weighs 1 - exp(-dt/tau)
    # (0: no averaging, each frame alone)
    tau_s: float = 0.05
    margin: float = 0.15  # a new label must lead the shown one by this much ...
    hold_s: float = 0.1  # ... for this long (0: at once)
    # "uncertain" when the average's leader is ahead of the runner-up by less than this (0:
    # never, the default: on the onset set no lead marks labels that are mostly wrong;
    # below any threshold they were still right on 35-40 % of frames)
    uncertain_lead: float = 0.0
    uncertain_band: float = 0.03  # ... and a label again only once it leads by this much more

    @classmethod
    def off(cls) -> SmoothSettings:
        """Raw frame-by-frame labels: for comparison and for users who want them."""
        return cls(tau_s=0.0, margin=0.0, hold_s=0.0, uncertain_lead=0.0, uncertain_band=0.0)


@dataclass
class _State:
    avg: np.ndarray
    shown: str
    since: float  # when the shown label began
    t: float  # the last frame's time
    challenger: int = -1
    challenger_since: float = 0.0


@dataclass(frozen=True)
class Smoothed:
    probs: tuple[float, ...]
    shown: str
    held_s: float


def lead(p: np.ndarray) -> float:
    """How far the most probable label is ahead of the next one."""
    if len(p) < 2:
        return float(p.max())
    top2 = np.partition(p, -2)[-2:]
    return float(top2[1] - top2[0])


@dataclass
class Smoother:
    labels: tuple[str, ...]
    settings: SmoothSettings = field(default_factory=SmoothSettings)
    _states: dict[int, _State] = field(default_factory=dict)

    def update(self, track_id: int, probs, timestamp: float) -> Smoothed:
        s = self.settings
        p = np.asarray(probs, np.float64)
        st = self._states.get(track_id)
        if st is None:
            # a face's first label at once, from its first frame (it was confirmed before
            # it got here): no wait for an average to fill
            st = _State(p.copy(), "", timestamp, timestamp)
            st.shown = self._label_for(st.avg, "")
            self._states[track_id] = st
        else:
            dt = max(0.0, timestamp - st.t)
            w = 1.0 if s.tau_s <= 0 else 1.0 - math.exp(-dt / s.tau_s)
            st.avg = (1 - w) * st.avg + w * p
            st.t = timestamp
            self._step(st, timestamp)
        return Smoothed(tuple(float(x) for x in st.avg), st.shown, max(0.0, timestamp - st.since))

    def current(self, track_id: int, timestamp: float) -> Smoothed | None:
        """What the board shows for a face on a frame where it was not classified (its
        reading carried, see vision.schedule): the same label, held a little longer."""
        st = self._states.get(track_id)
        if st is None:
            return None
        return Smoothed(tuple(float(x) for x in st.avg), st.shown, max(0.0, timestamp - st.since))

    def _label_for(self, avg: np.ndarray, shown: str) -> str:
        s = self.settings
        floor = s.uncertain_lead + (s.uncertain_band if shown == UNCERTAIN else 0.0)
        return UNCERTAIN if s.uncertain_lead > 0 and lead(avg) < floor else \
            self.labels[int(avg.argmax())]

    def _step(self, st: _State, timestamp: float) -> None:
        s = self.settings
        target = self._label_for(st.avg, st.shown)
        if target == st.shown:
            st.challenger = -1
            return
        if st.shown == UNCERTAIN:
            # out of "uncertain" at once: it is never shown on a face whose average leads
            # by the threshold and its band
            st.shown, st.since, st.challenger = target, timestamp, -1
            return
        if target == UNCERTAIN:
            key, advantage = -2, s.margin  # dropping to uncertain needs no contest
        else:
            key = int(st.avg.argmax())
            current = self.labels.index(st.shown) if st.shown in self.labels else None
            advantage = st.avg[key] - (st.avg[current] if current is not None else 0.0)
        if advantage >= s.margin:
            if st.challenger != key:
                st.challenger, st.challenger_since = key, timestamp
            if timestamp - st.challenger_since >= s.hold_s - 1e-9:
                st.shown, st.since, st.challenger = target, timestamp, -1
        else:
            st.challenger = -1

    def forget(self, live_ids: set[int]) -> None:
        """Drop state of tracks that ended, so memory stays flat on a long run."""
        for tid in list(self._states):
            if tid not in live_ids:
                del self._states[tid]

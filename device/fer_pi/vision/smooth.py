"""Per-face temporal smoothing with hysteresis, so the shown label does not flicker.

Pure: fed one face's probabilities per frame, it returns what the board should show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_pi.core.labels import UNCERTAIN


@dataclass(frozen=True)
class SmoothSettings:
    alpha: float = 0.3  # weight of the newest frame in the exponential average
    margin: float = 0.1  # a new label must lead the shown one by this much ...
    hold_frames: int = 6  # ... for this many frames in a row
    uncertain_below: float = 0.35  # shown as "uncertain" when the leader is below this ...
    uncertain_band: float = 0.03  # ... and shown again only once it is this much above it

    @classmethod
    def off(cls) -> SmoothSettings:
        """Raw frame-by-frame labels: for comparison and for users who want them."""
        return cls(alpha=1.0, margin=0.0, hold_frames=1, uncertain_below=0.0, uncertain_band=0.0)


@dataclass
class _State:
    avg: np.ndarray
    shown: str
    since: float
    challenger: int = -1
    streak: int = 0


@dataclass(frozen=True)
class Smoothed:
    probs: tuple[float, ...]
    shown: str
    held_s: float


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
            st = _State(p.copy(), "", timestamp)
            st.shown = self._label_for(st.avg)
            self._states[track_id] = st
        else:
            st.avg = (1 - s.alpha) * st.avg + s.alpha * p
            self._step(st, timestamp)
        return Smoothed(tuple(float(x) for x in st.avg), st.shown, max(0.0, timestamp - st.since))

    def _label_for(self, avg: np.ndarray) -> str:
        lead = int(avg.argmax())
        return self.labels[lead] if avg[lead] >= self.settings.uncertain_below else UNCERTAIN

    def _step(self, st: _State, timestamp: float) -> None:
        s = self.settings
        lead = int(st.avg.argmax())
        # hysteresis on the threshold too: a leader wandering about it would otherwise
        # take the label in and out of "uncertain"
        floor = s.uncertain_below + (s.uncertain_band if st.shown == UNCERTAIN else 0.0)
        if st.avg[lead] < floor:
            target, advantage = UNCERTAIN, s.margin  # dropping to uncertain needs no contest
        else:
            target = self.labels[lead]
            current = self.labels.index(st.shown) if st.shown in self.labels else None
            advantage = st.avg[lead] - (st.avg[current] if current is not None else 0.0)
        if target == st.shown:
            st.challenger, st.streak = -1, 0
            return
        key = lead if target != UNCERTAIN else -2
        if advantage >= s.margin or st.shown == UNCERTAIN:
            st.streak = st.streak + 1 if st.challenger == key else 1
            st.challenger = key
            if st.streak >= s.hold_frames:
                st.shown, st.since, st.challenger, st.streak = target, timestamp, -1, 0
        else:
            st.challenger, st.streak = -1, 0

    def forget(self, live_ids: set[int]) -> None:
        """Drop state of tracks that ended, so memory stays flat on a long run."""
        for tid in list(self._states):
            if tid not in live_ids:
                del self._states[tid]

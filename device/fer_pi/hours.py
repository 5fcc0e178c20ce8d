"""Opening hours: when the camera may watch the room.

A classroom or a museum wants the board on while people are meant to be there and the
camera off when they are not: nothing is captured, the Pi rests, and the screen says when
it opens. Spans are local wall-clock time, minute precision; a span may cross midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

SPAN = re.compile(r"\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*")


@dataclass(frozen=True)
class Hours:
    spans: tuple[tuple[int, int], ...]  # (start, end) in minutes after midnight; end < start wraps
    text: str

    @classmethod
    def parse(cls, text: str) -> Hours | None:
        """'08:00-18:00', '08:00-12:00,13:00-17:00' or '22:00-06:00'; '' is always open
        (None). Raises ValueError saying what is wrong."""
        if not text.strip():
            return None
        spans = []
        for part in text.split(","):
            m = SPAN.fullmatch(part)
            if not m:
                raise ValueError(f"{part.strip()!r} is not HH:MM-HH:MM")
            h1, m1, h2, m2 = map(int, m.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if start == end:
                raise ValueError(f"{part.strip()!r} is empty (for always, leave the setting "
                                 "empty)")
            spans.append((start, end))
        return cls(tuple(spans), text.strip())

    def is_open(self, t: datetime) -> bool:
        m = t.hour * 60 + t.minute
        return any(a <= m < b if a < b else (m >= a or m < b) for a, b in self.spans)

    def next_open(self, t: datetime) -> datetime:
        """The first minute from ``t`` on that is inside the hours (``t`` if open now)."""
        if self.is_open(t):
            return t
        start = t.replace(second=0, microsecond=0)
        for i in range(1, 24 * 60 + 1):
            if self.is_open(start + timedelta(minutes=i)):
                return start + timedelta(minutes=i)
        raise AssertionError("hours with a span are open within a day")  # pragma: no cover

    def __str__(self) -> str:
        return self.text

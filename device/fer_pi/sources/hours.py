"""Opening hours: when the camera may watch the room.

A classroom or a museum wants the board on while people are meant to be there and the
camera off when they are not: nothing is captured, the Pi rests, and the screen says when
it opens. Spans are local wall-clock time, minute precision; a span may cross midnight
(it belongs to the day it starts). A span may name its days: schools are shut at the
weekend, many museums on Mondays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
EVERY_DAY = frozenset(range(7))
SPAN = re.compile(r"\s*(?:(?P<days>[A-Za-z]{3}(?:\s*-\s*[A-Za-z]{3})?)\s+)?"
                  r"(?P<h1>[01]?\d|2[0-3]):(?P<m1>[0-5]\d)\s*-\s*"
                  r"(?P<h2>[01]?\d|2[0-3]):(?P<m2>[0-5]\d)\s*")


def _days(text: str | None, part: str) -> frozenset[int]:
    """'Mon-Fri' → {0..4}; 'Sat' → {5}; 'Fri-Mon' wraps → {4, 5, 6, 0}; None: every day."""
    if text is None:
        return EVERY_DAY
    ends = [d.strip().lower() for d in text.split("-")]
    for d in ends:
        if d not in DAYS:
            raise ValueError(f"{part!r}: {d!r} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
    return frozenset((first + i) % 7 for i in range((last - first) % 7 + 1))


@dataclass(frozen=True)
class Hours:
    # (days, start, end): weekday numbers, minutes after midnight; end < start wraps
    spans: tuple[tuple[frozenset[int], int, int], ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> Hours | None:
        """'08:00-18:00', '08:00-12:00,13:00-17:00', '22:00-06:00', or with days
        'Mon-Fri 08:00-18:00, Sat 10:00-14:00'; '' is always open (None). Raises
        ValueError saying what is wrong."""
        if not text.strip():
            return None
        spans = []
        for part in text.split(","):
            m = SPAN.fullmatch(part)
            if not m:
                raise ValueError(f"{part.strip()!r} is not [days] HH:MM-HH:MM (days: Mon-Fri, "
                                 "Sat, ...)")
            days = _days(m["days"], part.strip())
            start = int(m["h1"]) * 60 + int(m["m1"])
            end = int(m["h2"]) * 60 + int(m["m2"])
            if start == end:
                raise ValueError(f"{part.strip()!r} is empty (for always, leave the setting "
                                 "empty)")
            spans.append((days, start, end))
        return cls(tuple(spans), text.strip())

    def is_open(self, t: datetime) -> bool:
        m, today, yesterday = t.hour * 60 + t.minute, t.weekday(), (t.weekday() - 1) % 7
        for days, a, b in self.spans:
            if a < b:
                if today in days and a <= m < b:
                    return True
            elif (today in days and m >= a) or (yesterday in days and m < b):
                return True  # a span across midnight belongs to the day it starts
        return False

    def next_open(self, t: datetime) -> datetime:
        """The first minute from ``t`` on that is inside the hours (``t`` if open now)."""
        if self.is_open(t):
            return t
        start = t.replace(second=0, microsecond=0)
        for i in range(1, 8 * 24 * 60 + 1):
            if self.is_open(start + timedelta(minutes=i)):
                return start + timedelta(minutes=i)
        raise AssertionError("hours with a span are open within a week")  # pragma: no cover

    def __str__(self) -> str:
        return self.text


def when(opens: datetime, now: datetime,
         day_names: tuple[str, ...] = tuple(d.capitalize() for d in DAYS)) -> str:
    """How the board says when the hours begin: '08:00' within a day, 'Mon 08:00' when it is
    further away (a weekend); ``day_names`` Monday first, in the room's language."""
    if opens - now < timedelta(hours=24):
        return f"{opens:%H:%M}"
    return f"{day_names[opens.weekday()]} {opens:%H:%M}"

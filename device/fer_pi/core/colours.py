"""One colour per emotion, shared by everything that draws labels: the board, the room's
page and the report. Plain RGB tuples, so that a page can use them without pygame."""

from __future__ import annotations

from fer_pi.core.labels import UNCERTAIN

# chosen to stay apart for common colour blindness where possible: warm for negative
# arousal, cool for low arousal
EMOTION_COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 57, 70),
    "disgust": (106, 153, 78),
    "fear": (155, 93, 229),
    "happy": (255, 200, 40),
    "sad": (58, 134, 255),
    "surprise": (255, 133, 27),
    "neutral": (170, 170, 170),
    UNCERTAIN: (110, 110, 110),
}
_FALLBACK = [(0, 180, 200), (200, 0, 120), (120, 200, 0)]


def colour_for(label: str) -> tuple[int, int, int]:
    """A model's own label outside FER2013's seven gets a steady colour of its name."""
    if label in EMOTION_COLOURS:
        return EMOTION_COLOURS[label]
    return _FALLBACK[sum(map(ord, label)) % len(_FALLBACK)]


def css_colour(label: str) -> str:
    r, g, b = colour_for(label)
    return f"#{r:02x}{g:02x}{b:02x}"

"""The board's look: one colour per emotion, and where the picture and the panel go.

Sizes follow the surface's height, so one layout reads on a 7" 800×480 panel and on a
1080p TV.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygame

from fer_pi.core.labels import UNCERTAIN

# one colour per emotion (RGB), chosen to stay apart for common colour blindness
# where possible: warm for negative arousal, cool for low arousal
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
BACKGROUND = (18, 18, 24)
PANEL = (30, 30, 40)
TEXT = (235, 235, 235)
DIM = (150, 150, 160)
NIGHT_TEXT = (70, 70, 76)  # closed for the night: readable close up, dark across a room


def colour_for(label: str) -> tuple[int, int, int]:
    if label in EMOTION_COLOURS:
        return EMOTION_COLOURS[label]
    return _FALLBACK[sum(map(ord, label)) % len(_FALLBACK)]


@dataclass(frozen=True)
class Layout:
    picture: pygame.Rect
    panel: pygame.Rect
    unit: int  # base text size in pixels


def layout(size: tuple[int, int]) -> Layout:
    w, h = size
    unit = max(15, min(w, h) // 28)
    if h > w:  # portrait (a screen on its side, the Pi Touch Display 2): panel below
        pic_h = min(h // 2, w * 3 // 4)
        return Layout(pygame.Rect(0, 0, w, pic_h), pygame.Rect(0, pic_h, w, h - pic_h), unit)
    panel_w = max(240, min(w // 3, 40 * unit))
    if w < 2 * panel_w:  # narrow screens: the picture keeps at least half
        panel_w = w // 2
    return Layout(pygame.Rect(0, 0, w - panel_w, h), pygame.Rect(w - panel_w, 0, panel_w, h), unit)

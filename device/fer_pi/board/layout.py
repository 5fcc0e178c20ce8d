"""The board's look: one colour per emotion, and where the picture and the panel go.

Sizes follow the surface's height, so one layout reads on a 7" 800×480 panel and on a
1080p TV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pygame

from fer_pi.core.colours import colour_for  # noqa: F401 (the board draws with it)

BACKGROUND = (18, 18, 24)
PANEL = (30, 30, 40)
CARD = (44, 44, 58)
TEXT = (235, 235, 235)
# secondary text: 5.6:1 on a card, 6.3:1 on the panel (WCAG AA asks 4.5 for text)
DIM = (172, 172, 184)
NIGHT_TEXT = (70, 70, 76)  # closed for the night: readable close up, dark across a room
MUTED_BAR = (96, 96, 110)  # an uncertain face's bars: no colour that looks like an answer


def _linear(c: int) -> float:
    v = c / 255.0
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2 relative luminance."""
    r, g, b = (_linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: tuple[int, int, int], bg: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio, 1 to 21 (AA for text: at least 4.5)."""
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def ink_for(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on ``bg`` (an emotion's colour)."""
    return (0, 0, 0) if contrast((0, 0, 0), bg) >= contrast((255, 255, 255), bg) else \
        (255, 255, 255)


@dataclass(frozen=True)
class Type:
    """Text heights in pixels (a rendered line's height) for a screen and a number of faces:
    the shown label is the largest thing on the board; nothing meant for the room is
    smaller than ``detail`` (3 % of the screen's height, 14 px at least)."""

    label: int  # each card's shown label
    label_floor: int  # as small as it gets to make room for the bars or more cards
    tag: int  # the label on the picture, beside the face
    detail: int  # confidence and time held, the room's counts, the bars' names and figures
    empty: int  # the empty room's message


# shown labels as a share of the screen's height (up to N faces: best, floor): 10 % for one
# or two faces, never below 8.2 %; 6 % for three or four, never below 5.2 %; beyond, 5.5 and 5
LABEL_SHARE = ((2, 0.10, 0.082), (4, 0.06, 0.052), (64, 0.055, 0.05))
DETAIL_SHARE = 0.034
MIN_TEXT = 14


def type_for(height: int, n_faces: int) -> Type:
    detail = max(MIN_TEXT, round(DETAIL_SHARE * height))
    best, floor = next((b, f) for n, b, f in LABEL_SHARE if n_faces <= n)
    label = max(detail + 2, round(best * height))
    return Type(label=label, label_floor=max(detail + 2, math.ceil(floor * height)),
                tag=max(detail, round(label * 0.55)), detail=detail,
                empty=max(detail + 2, round(0.075 * height)))


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

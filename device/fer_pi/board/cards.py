"""Which faces have a card on the board: a pure model of the panel (no pygame), so the
rules (cards fill from the top; a face keeps its slot while in view, fades out after it
leaves, and its slot then closes; no pixels kept under privacy no_picture) are tested
without drawing."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fer_pi.core.records import Face, FrameResult
from fer_pi.vision.prepare import crop_face


@dataclass
class Card:
    """A face's card: it keeps its slot while the face stays in view, then fades out."""

    face: Face
    thumb: np.ndarray | None  # RGB, square; None with privacy no_picture
    last_seen: float
    slot: int
    thumb_t: float = 0.0  # when the picture was last cut from the frame


THUMB_EVERY_S = 0.2


class CardDeck:
    """The cards by track ID; an untracked face's card lives for its frame only."""

    def __init__(self, max_cards: int = 8, fade_s: float = 1.0):
        self.max_cards, self.fade_s = max_cards, fade_s
        self.cards: dict[int, Card] = {}

    def update(self, result: FrameResult, privacy: str = "off", mirror: bool = False) -> None:
        now = result.frame.steady_t
        if any(f.track_id is None for f in result.faces):
            self.cards = {}  # no tracking: cards follow the frame's faces, nothing to keep
        for i, face in enumerate(result.faces[: self.max_cards]):
            key = face.track_id if face.track_id is not None else -1 - i
            card = self.cards.get(key)
            # a card's picture is cut again five times a second, not every frame: it is a
            # small picture, and cutting, scaling and uploading it is most of a card's cost
            fresh = card is None or now - card.thumb_t >= THUMB_EVERY_S - 1e-6 or \
                (card.thumb is None) != (privacy == "no_picture")
            if privacy == "no_picture":
                thumb = None  # no face pixels are kept at all
            elif not fresh:
                thumb = card.thumb
            else:
                thumb = thumbnail(result.frame.image, face)
                if privacy == "pixelate":
                    thumb = pixelate(thumb)
                if mirror:
                    thumb = np.ascontiguousarray(thumb[:, ::-1])
            if card is None:  # a new face takes the slot after the last: none jumps
                slot = max((c.slot for c in self.cards.values()), default=-1) + 1
                self.cards[key] = Card(face, thumb, now, slot, now)
            else:
                card.face, card.thumb, card.last_seen = face, thumb, now
                if fresh:
                    card.thumb_t = now
        gone = [k for k, c in self.cards.items() if now - c.last_seen > self.fade_s]
        for key in gone:
            del self.cards[key]
        if gone:  # its slot closes once it has faded out: the cards below move up one
            for i, c in enumerate(self.in_slot_order()):
                c.slot = i

    def clear(self) -> None:
        """Nobody is known to be in view: no face's card or thumbnail may stay."""
        self.cards.clear()

    def opacity(self, card: Card, now: float) -> float:
        """1 while its face is in view, falling to 0 over fade_s after it left."""
        return 1.0 - max(0.0, now - card.last_seen) / self.fade_s

    def in_slot_order(self) -> list[Card]:
        return sorted(self.cards.values(), key=lambda c: c.slot)


def pixelate(rgb: np.ndarray, blocks: int = 6) -> np.ndarray:
    """A face as ``blocks``×``blocks`` flat squares: its place and tone stay, who it is goes."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (min(blocks, w), min(blocks, h)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def thumbnail(image: np.ndarray, face: Face, side: int = 96) -> np.ndarray:
    """The face's card picture: RGB, square, with a little room around the box."""
    if image.ndim == 2 or image.shape[2] == 1:
        bgr = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    else:
        bgr = np.ascontiguousarray(image[:, :, :3])
    return cv2.cvtColor(crop_face(bgr, face.box, (side, side), 0.15), cv2.COLOR_BGR2RGB)

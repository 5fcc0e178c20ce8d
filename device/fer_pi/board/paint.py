"""The emotion display board, drawn onto any pygame Surface.

Drawing is separate from the window (display.py), so tests render the board to
an off-screen surface under SDL_VIDEODRIVER=dummy and check the pixels. Which faces
have cards is the CardDeck's business (cards.py); the look is layout.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pygame

from fer_pi.board.cards import Card, CardDeck, pixelate
from fer_pi.board.layout import (
    BACKGROUND,
    CARD,
    DIM,
    MIN_TEXT,
    MUTED_BAR,
    NIGHT_TEXT,
    PANEL,
    TEXT,
    Layout,
    Type,
    colour_for,
    ink_for,
    layout,
    type_for,
)
from fer_pi.board.pixels import PictureScaler, takes_bgra
from fer_pi.core.constants import PRIVACY, ROTATIONS
from fer_pi.core.labels import UNCERTAIN
from fer_pi.core.records import FrameResult, room_summary
from fer_pi.core.words import WORDS


@dataclass
class BoardStats:
    """What the overlay shows; filled by the pipeline."""

    fps: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)
    status: str = ""  # e.g. "camera lost, retrying"
    # closed outside source.hours: a dark screen, the status in small dim text that moves
    # once a minute (a screen on all night must not burn in a bright layout), at this time
    night_t: float | None = None


@dataclass(frozen=True)
class DrawnText:
    """One text the board drew: what, how high (the rendered line), on what background."""

    role: str  # label, tag, detail, bar, summary, empty, hint, banner; overlay (not for the room)
    text: str
    height: int
    fg: tuple[int, int, int]
    bg: tuple[int, int, int]
    rect: pygame.Rect
    face: int | None = None  # the track the text is about
    room: bool = True  # meant to be read across the room


# texts lower than this are drawn twice as large and scaled down (_CachedFont)
SUPERSAMPLE_BELOW = 40


def _bar_gap(h: int) -> int:
    """The space between two bars whose names are ``h`` high."""
    return max(2, h // 12)


def _card_plan(panel: pygame.Rect, y: int, n: int, ty: Type, pad: int, n_bars: int):
    """(columns, rows, card height, label height, bars) for n cards below ``y``, or None when
    even one line each does not fit. The label keeps its size first; the bars go first."""
    avail = panel.bottom - y - pad
    bars_h = n_bars * (ty.detail + _bar_gap(ty.detail)) + pad
    for cols in (1, 2, 3):
        if cols > 1 and panel.w // cols < 12 * ty.detail:
            break
        rows = -(-n // cols)
        per = avail // rows - pad
        for label_h, bars in ((ty.label, True), (ty.label_floor, True), (ty.label, False),
                              (ty.label_floor, False)):
            base = 2 * pad + label_h + ty.detail + pad // 2
            need = base + (bars_h if bars else 0)
            if need <= per:
                return cols, rows, need, label_h, bars
    return None


class Board:
    """Draws a FrameResult: the picture with boxes and tags, a panel of cards, an overlay.

    The board remembers cards by track ID, so each face keeps its place on screen;
    a face that leaves fades out over ``fade_s`` seconds of frame time.
    """

    def __init__(self, labels: tuple[str, ...], max_cards: int = 8, fade_s: float = 1.0,
                 mirror: bool = False, privacy: str = "off", rotate: int = 0,
                 names: dict[str, str] | None = None, words: dict[str, str] | None = None):
        if not pygame.font.get_init():
            pygame.font.init()
        self.labels = labels
        self.names = names or {}  # the words shown for labels (board.label_names)
        self.words = words or WORDS  # its other words (board.words)
        self.mirror = mirror  # drawing only: boxes and records stay in camera coordinates
        if privacy not in PRIVACY:
            raise ValueError(f"privacy must be one of {', '.join(PRIVACY)}, not {privacy!r}")
        self.privacy = privacy
        if rotate not in ROTATIONS:
            raise ValueError(f"rotate must be one of {ROTATIONS}, not {rotate!r}")
        # degrees clockwise: the board is drawn upright on a canvas, then turned onto the
        # screen (SDL's KMSDRM ignores the kernel's rotate=, so nothing else turns it)
        self.rotate = rotate
        self._canvas: pygame.Surface | None = None
        self._scaler = PictureScaler()  # the picture straight into a 32-bit screen
        self.deck = CardDeck(max_cards, fade_s)
        self._fonts: dict[int, _CachedFont] = {}
        self._by_height: dict[int, _CachedFont] = {}
        self.drawn: list[DrawnText] = []  # every text of the last draw (legibility tests)
        # card slot: (the picture it was made from, its side, the surface)
        self._thumbs: dict[int, tuple[np.ndarray, int, pygame.Surface]] = {}

    @property
    def cards(self) -> dict[int, Card]:
        """The faces with a card now, by track ID."""
        return self.deck.cards

    def word(self, label: str) -> str:
        """What the board shows for a label: the room's word for it (board.label_names)."""
        return self.names.get(label, label)

    def say(self, key: str, **fields) -> str:
        """One of the board's phrases (words.WORDS), in the room's language."""
        return self.words[key].format(**fields)

    def _count(self, n: int) -> str:
        return self.say("one_face") if n == 1 else self.say("faces", n=n)

    def font(self, px: int) -> _CachedFont:
        if px not in self._fonts:
            self._fonts[px] = _CachedFont(pygame.font.Font(None, px))
        return self._fonts[px]

    def draw(self, surface: pygame.Surface, result: FrameResult | None, stats: BoardStats,
             overlay: bool = True) -> None:
        if not self.rotate:
            self._draw(surface, result, stats, overlay)
            return
        w, h = surface.get_size()
        size = (h, w) if self.rotate in (90, 270) else (w, h)
        if self._canvas is None or self._canvas.get_size() != size:
            self._canvas = pygame.Surface(size)
        self._draw(self._canvas, result, stats, overlay)
        surface.blit(pygame.transform.rotate(self._canvas, -self.rotate), (0, 0))

    def _draw(self, surface: pygame.Surface, result: FrameResult | None, stats: BoardStats,
              overlay: bool) -> None:
        lay = layout(surface.get_size())
        self.drawn = []
        if stats.night_t is not None:
            self.deck.clear()
            self._draw_night(surface, lay, stats.status, stats.night_t)
            return
        surface.fill(BACKGROUND)
        if result is not None:
            self.deck.update(result, self.privacy, self.mirror)
        else:  # no picture (the camera is lost or closed for the night): nobody is known to
            self.deck.clear()  # be in view, and no face's thumbnail may stay on the screen
        ty = type_for(surface.get_height(), len(self.cards))
        if result is not None:
            self._draw_picture(surface, lay, result, ty)
        self._draw_panel(surface, lay, result, ty)
        if stats.status:
            self._banner(surface, lay, stats.status, ty)
        if overlay:
            self._draw_overlay(surface, lay, stats, len(result.faces) if result else 0)

    def _pixelate(self, picture: np.ndarray, result: FrameResult, scale: float) -> None:
        """privacy 'pixelate': each face's box and a margin (hair and ears too) in blocks,
        in the scaled picture before any mirroring."""
        if self.privacy != "pixelate":
            return
        th, tw = picture.shape[:2]
        for face in result.faces:
            b, m = face.box, 0.15 * face.box.w
            x0, y0 = max(0, int((b.x - m) * scale)), max(0, int((b.y - m) * scale))
            x1 = min(tw, int((b.x + b.w + m) * scale) + 1)
            y1 = min(th, int((b.y + b.h + m) * scale) + 1)
            if x1 > x0 and y1 > y0:
                picture[y0:y1, x0:x1] = pixelate(picture[y0:y1, x0:x1])

    def _draw_picture(self, surface: pygame.Surface, lay: Layout, result: FrameResult,
                      ty: Type) -> None:
        image = result.frame.image
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        ih, iw = image.shape[:2]
        box = lay.picture
        scale = min(box.w / iw, box.h / ih)
        tw, th = max(1, int(iw * scale)), max(1, int(ih * scale))
        # at the top of its area: a spare band goes below it, under the overlay
        ox, oy = box.x + (box.w - tw) // 2, box.y
        if self.privacy == "no_picture":
            pygame.draw.rect(surface, PANEL, pygame.Rect(ox, oy, tw, th))
        elif takes_bgra(surface):  # scaled once, straight into the screen's own pixels
            self._scaler.into(surface, image, ox, oy, tw, th, mirror=self.mirror,
                              edit=lambda picture: self._pixelate(picture, result, scale))
        else:
            # one resize into the picture's size; pygame reads the BGR pixels where they are
            rgb = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR)
            self._pixelate(rgb, result, scale)
            if self.mirror:
                rgb = cv2.flip(rgb, 1)
            surface.blit(pygame.image.frombuffer(np.ascontiguousarray(rgb), (tw, th), "BGR"),
                         (ox, oy))
        thick = max(2, ty.detail // 6)
        for face in result.faces:
            label = face.shown_label
            colour = colour_for(label)
            bw = max(1, int(face.box.w * scale))
            bx = tw - int(face.box.x * scale) - bw if self.mirror else int(face.box.x * scale)
            r = pygame.Rect(ox + bx, oy + int(face.box.y * scale), bw,
                            max(1, int(face.box.h * scale)))
            pygame.draw.rect(surface, colour, r, thick, border_radius=thick * 2)
            tag = self.tag_text(face)
            font = self.font_h(ty.tag)
            tr = pygame.Rect((0, 0), font.size(tag)).inflate(ty.tag // 2, ty.tag // 6)
            tr.bottomleft = (r.x, max(tr.h, r.y))
            tr.right = min(tr.right, box.right)  # on the picture, never over the panel
            tr.left = max(tr.left, box.x)
            pygame.draw.rect(surface, colour, tr, border_radius=thick)
            self._text(surface, "tag", tag, ty.tag, ink_for(colour), colour, tr.center,
                       face.track_id, anchor="center")

    def tag_text(self, face) -> str:
        """The label beside a face on the picture: the card's word, and its figure only where
        the label is one (an uncertain face gets no confident-looking number)."""
        label = face.shown_label
        word = self.word(label)
        tag = word if label == UNCERTAIN else f"{word} {face.shown_confidence:.0%}"
        return f"#{face.track_id} {tag}" if face.track_id is not None else tag

    def _draw_panel(self, surface: pygame.Surface, lay: Layout, result: FrameResult | None,
                    ty: Type) -> None:
        panel = lay.panel
        pygame.draw.rect(surface, PANEL, panel)
        pad = max(4, ty.detail // 2)
        y = self._draw_summary(surface, lay, result, panel.y + pad, ty) + pad
        if not self.cards:
            self._draw_empty(surface, pygame.Rect(panel.x, y, panel.w, panel.bottom - y), ty)
            return
        now = result.frame.steady_t if result else 0.0
        n_slots = max(c.slot for c in self.cards.values()) + 1
        plan = _card_plan(panel, y, n_slots, ty, pad, len(self.labels))
        if plan is None:
            self._compact_cards(surface, lay, y, ty)
            return
        cols, rows, card_h, label_h, bars = plan
        col_w = (panel.w - pad) // cols
        for card in self.deck.in_slot_order():
            cx = panel.x + pad // 2 + (card.slot % cols) * col_w
            cy = y + (card.slot // cols) * (card_h + pad)
            rect = pygame.Rect(cx, cy, col_w - pad // 2, card_h)
            fade = self.deck.opacity(card, now)
            if fade >= 0.999:
                self._card(surface, rect, card, ty, label_h, bars)
            else:
                layer = pygame.Surface(rect.size, pygame.SRCALPHA)
                self._card(layer, pygame.Rect((0, 0), rect.size), card, ty, label_h, bars,
                           fading=True)
                layer.set_alpha(max(0, int(255 * fade)))
                surface.blit(layer, rect.topleft)

    def _draw_empty(self, surface: pygame.Surface, area: pygame.Rect, ty: Type) -> None:
        """An empty room that looks intended: what is going on, large, and what will happen."""
        lines = [("empty", ln, ty.empty, TEXT) for ln in
                 self._wrap(self.say("no_faces"), ty.empty, area.w - ty.detail)]
        lines += [("hint", ln, ty.detail, DIM) for ln in
                  self._wrap(self.say("empty_hint"), ty.detail, area.w - ty.detail)]
        total = sum(h for _, _, h, _ in lines) + ty.detail
        y = area.y + max(0, (area.h - total) // 3)
        for i, (role, text, h, colour) in enumerate(lines):
            if i and lines[i - 1][0] != role:
                y += ty.detail
            r = self._text(surface, role, text, h, colour, PANEL, (area.centerx, y),
                           anchor="midtop")
            y = r.bottom

    def _wrap(self, text: str, height: int, width: int) -> list[str]:
        """Words on as many lines as ``width`` needs at ``height``."""
        font, lines, line = self.font_h(height), [], ""
        for word in text.split():
            test = f"{line} {word}".strip()
            if line and font.size(test)[0] > width:
                lines.append(line)
                line = word
            else:
                line = test
        return lines + ([line] if line else [])

    def _thumb_surface(self, card: Card, side: int) -> pygame.Surface:
        """The card's picture at its size on screen, made again only when it changed. The
        cache holds the picture it was made from and compares by identity: an id() alone
        could be reused by the next picture once the old one is freed."""
        got = self._thumbs.get(card.slot)
        if got is None or got[0] is not card.thumb or got[1] != side:
            thumb = cv2.resize(card.thumb, (side, side), interpolation=cv2.INTER_AREA)
            got = (card.thumb, side, pygame.image.frombuffer(thumb, (side, side), "RGB").copy())
            self._thumbs[card.slot] = got
        return got[2]

    def _draw_summary(self, surface, lay: Layout, result: FrameResult | None, y: int,
                      ty: Type) -> int:
        """The room at a glance: how many faces show each emotion (the frame's own room
        summary, made with its faces)."""
        h = ty.detail
        faces = result.faces if result else ()
        room = (result.room if result is not None and result.room
                else room_summary(faces, self.labels))
        counts = room["counts"]
        x0 = lay.panel.x + h // 2
        head = self._text(surface, "summary", self._count(len(faces)), h, TEXT, PANEL, (x0, y))
        x, bottom = head.right + h // 2, head.bottom
        for label, count in counts.items():
            if not count:
                continue
            text = f"{self.word(label)} {count}"
            r = pygame.Rect((x, y), self.font_h(h).size(text)).inflate(h // 2, h // 6)
            r.topleft = (x, y - h // 12)
            if r.right > lay.panel.right - h // 4:
                x, y = x0, bottom + h // 6
                r.topleft = (x, y)
            colour = colour_for(label)
            pygame.draw.rect(surface, colour, r, border_radius=h // 4)
            self._text(surface, "summary", text, h, ink_for(colour), colour, r.center,
                       anchor="center")
            x, bottom = r.right + h // 3, max(bottom, r.bottom)
        return bottom

    def _card(self, surface: pygame.Surface, rect: pygame.Rect, card: Card, ty: Type,
              label_h: int, bars: bool, fading: bool = False) -> None:
        face = card.face
        label = face.shown_label
        uncertain = label == UNCERTAIN
        colour = colour_for(label)
        pad = max(4, ty.detail // 2)
        pygame.draw.rect(surface, CARD, rect, border_radius=pad)
        stripe = max(4, ty.detail // 3)
        pygame.draw.rect(surface, colour, pygame.Rect(rect.x, rect.y, stripe, rect.h),
                         border_radius=stripe // 2)
        side = label_h + ty.detail + pad // 2
        tx0 = rect.x + stripe + pad
        if card.thumb is None:  # privacy no_picture: the emotion's colour instead of the face
            pygame.draw.rect(surface, colour, pygame.Rect(tx0, rect.y + pad, side, side),
                             border_radius=pad)
        else:
            surface.blit(self._thumb_surface(card, side), (tx0, rect.y + pad))
        tx = tx0 + side + pad
        width = rect.right - pad - tx
        tid = face.track_id
        self._text(surface, "label", self.word(label), label_h, TEXT, CARD, (tx, rect.y + pad),
                   tid, max_w=width, fading=fading)
        if uncertain:  # what the model leans to, with no figure beside it
            top = max(range(len(self.labels)), key=lambda i: face.shown_probs[i])
            sub = self.say("leans", label=self.word(self.labels[top]))
        else:
            sub = f"{face.shown_confidence:.0%}"
            if face.shown is not None:
                sub += "  " + self.say("held", s=f"{face.held_s:.1f}")
        if tid is not None:
            sub = f"#{tid}  {sub}"
        self._text(surface, "detail", sub, ty.detail, DIM, CARD,
                   (tx, rect.y + pad + label_h + pad // 2), tid, max_w=width, fading=fading)
        if not bars:
            return
        y = rect.y + pad + side + pad
        h = ty.detail
        name_w = max(self.font_h(h).size(self.word(n))[0] for n in self.labels) + pad
        num_w = self.font_h(h).size("100%")[0] + pad // 2
        for name, p in zip(self.labels, face.shown_probs, strict=False):
            x = rect.x + stripe + pad
            self._text(surface, "bar", self.word(name), h, DIM, CARD, (x, y), tid,
                       fading=fading)
            bx = x + name_w
            bw = max(1, rect.right - pad - bx - (0 if uncertain else num_w))
            bar_h = max(4, h * 2 // 3)
            by = y + (h - bar_h) // 2
            pygame.draw.rect(surface, (60, 60, 76), pygame.Rect(bx, by, bw, bar_h))
            pygame.draw.rect(surface, MUTED_BAR if uncertain else colour_for(name),
                             pygame.Rect(bx, by, max(1, int(bw * float(p))), bar_h))
            if not uncertain:
                self._text(surface, "bar", f"{float(p):.0%}", h, DIM, CARD,
                           (rect.right - pad, y), tid, anchor="topright", fading=fading)
            y += h + _bar_gap(h)

    def _compact_cards(self, surface, lay: Layout, y: int, ty: Type) -> None:
        """More faces than cards fit: one line each, at the label's smallest size."""
        h = ty.label
        for card in self.deck.in_slot_order():
            if y + h > lay.panel.bottom:
                break
            face = card.face
            r = self._text(surface, "label", self.tag_text(face), h, TEXT, PANEL,
                           (lay.panel.x + ty.detail, y), face.track_id,
                           max_w=lay.panel.w - 2 * ty.detail)
            pygame.draw.rect(surface, colour_for(face.shown_label),
                             pygame.Rect(lay.panel.x + ty.detail // 4, y, ty.detail // 2, r.h))
            y = r.bottom + ty.detail // 3

    def font_h(self, height: int) -> _CachedFont:
        """The font whose lines are ``height`` pixels high (pygame's default font)."""
        if height not in self._by_height:
            shrink = 0.5 if height < SUPERSAMPLE_BELOW else 1.0
            size = max(4, int(height / shrink / 0.69))
            while round(pygame.font.Font(None, size).get_height() * shrink) < height:
                size += 1
            self._by_height[height] = _CachedFont(pygame.font.Font(None, size), shrink=shrink)
        return self._by_height[height]

    def _text(self, surface: pygame.Surface, role: str, text: str, height: int, fg, bg,
              at: tuple[int, int], face: int | None = None, anchor: str = "topleft",
              max_w: int | None = None, room: bool = True,
              fading: bool = False) -> pygame.Rect:
        """Draw one text and note it (Board.drawn): the legibility tests read what was drawn,
        how high, on what. A text too wide for ``max_w`` is drawn smaller, not cut."""
        while max_w is not None and height > MIN_TEXT and self.font_h(height).size(text)[0] > max_w:
            height -= 1
        img = self.font_h(height).render(text, True, fg)
        rect = img.get_rect(**{anchor: at})
        surface.blit(img, rect)
        if not fading:
            self.drawn.append(DrawnText(role, text, img.get_height(), tuple(fg), tuple(bg),
                                        rect, face, room))
        return rect

    def _draw_overlay(self, surface: pygame.Surface, lay: Layout, stats: BoardStats,
                      n_faces: int) -> None:
        font = self.font(max(10, int(lay.unit * 0.8)))
        parts = [f"{stats.fps:4.1f} FPS", self._count(n_faces)]
        parts += [f"{k} {v:.1f} ms" for k, v in stats.timings_ms.items()]
        line = "  ".join(parts)
        text = font.render(line, True, TEXT)
        bg = pygame.Surface((text.get_width() + lay.unit, text.get_height() + lay.unit // 2),
                            pygame.SRCALPHA)
        bg.fill((0, 0, 0, 160))
        surface.blit(bg, (lay.picture.x, lay.picture.bottom - bg.get_height()))
        at = (lay.picture.x + lay.unit // 2, lay.picture.bottom - bg.get_height() + lay.unit // 4)
        surface.blit(text, at)
        # for whoever maintains the board (key d), not for the room
        self.drawn.append(DrawnText("overlay", line, text.get_height(), TEXT, (0, 0, 0),
                                    text.get_rect(topleft=at), None, False))

    def _draw_night(self, surface: pygame.Surface, lay: Layout, status: str, t: float) -> None:
        """Black, with the status in dim grey at a place that changes every minute."""
        surface.fill((0, 0, 0))
        text = self.font(lay.unit).render(status, True, NIGHT_TEXT)
        w, h = surface.get_size()
        room_x, room_y = max(1, w - text.get_width()), max(1, h - text.get_height())
        minute = int(t // 60)
        # a fixed walk over the screen: steps of two unrelated irrationals (golden ratio,
        # sqrt 2) visit the whole area, never the same place twice running
        x = int((minute * 0.6180340) % 1.0 * room_x)
        y = int((minute * 0.4142136 + 0.5) % 1.0 * room_y)
        surface.blit(text, (x, y))

    def _banner(self, surface: pygame.Surface, lay: Layout, status: str, ty: Type) -> None:
        h = max(ty.tag, ty.detail)
        red = (170, 40, 40)
        r = pygame.Rect((0, 0), self.font_h(h).size(status)).inflate(h * 2, h)
        r.center = lay.picture.center
        pygame.draw.rect(surface, red, r, border_radius=h // 3)
        self._text(surface, "banner", status, h, (255, 255, 255), red, r.center,
                   anchor="center", max_w=lay.picture.w - h)


class _CachedFont:
    """A font whose rendered texts are kept: a board redraws the same few dozen words and
    numbers every frame, and rendering text is a good part of a frame's drawing.

    ``shrink`` < 1: texts are drawn with a font that much larger and scaled down (pygame's
    default font, hinted at small sizes, spaces letters unevenly: "sur prise", "neu tral")."""

    def __init__(self, font: pygame.font.Font, keep: int = 512, shrink: float = 1.0):
        self._font, self._keep, self._shrink = font, keep, shrink
        self._cache: dict[tuple, pygame.Surface] = {}

    def size(self, text: str) -> tuple[int, int]:
        w, h = self._font.size(text)
        return (max(1, round(w * self._shrink)), max(1, round(h * self._shrink)))

    def get_height(self) -> int:
        return max(1, round(self._font.get_height() * self._shrink))

    def render(self, text: str, antialias: bool, colour) -> pygame.Surface:
        key = (text, antialias, tuple(colour))
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) >= self._keep:  # the overlay's figures change every frame
                self._cache.clear()
            surf = self._font.render(text, antialias, colour)
            if self._shrink != 1.0:
                surf = pygame.transform.smoothscale(surf, self.size(text))
            self._cache[key] = surf
        return surf


def offscreen_show(labels: tuple[str, ...], size: tuple[int, int], rotate: int = 0):
    """A pipeline ``show`` that draws the board onto an off-screen surface: the draw
    stage's real cost for benchmarks and soak runs, with no window."""
    pygame.display.init()
    surface = pygame.Surface(size)
    board = Board(labels, rotate=rotate)

    def show(result, stats) -> bool:
        board.draw(surface, result, BoardStats(stats.fps, stats.mean_ms()))
        return True

    return show


def frame_to_array(surface: pygame.Surface) -> np.ndarray:
    """(H, W, 3) RGB copy of a surface: for tests and --save-frames."""
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).swapaxes(0, 1))

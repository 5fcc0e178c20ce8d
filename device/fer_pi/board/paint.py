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
from fer_pi.board.layout import BACKGROUND, DIM, NIGHT_TEXT, PANEL, TEXT, Layout, colour_for, layout
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
        self.deck = CardDeck(max_cards, fade_s)
        self._fonts: dict[int, _CachedFont] = {}
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
        if stats.night_t is not None:
            self.deck.clear()
            self._draw_night(surface, lay, stats.status, stats.night_t)
            return
        surface.fill(BACKGROUND)
        if result is not None:
            self.deck.update(result, self.privacy, self.mirror)
            self._draw_picture(surface, lay, result)
        else:  # no picture (the camera is lost or closed for the night): nobody is known to
            self.deck.clear()  # be in view, and no face's thumbnail may stay on the screen
        self._draw_panel(surface, lay, result)
        if stats.status:
            self._banner(surface, lay, stats.status)
        if overlay:
            self._draw_overlay(surface, lay, stats, len(result.faces) if result else 0)

    def _draw_picture(self, surface: pygame.Surface, lay: Layout, result: FrameResult) -> None:
        image = result.frame.image
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        ih, iw = image.shape[:2]
        box = lay.picture
        scale = min(box.w / iw, box.h / ih)
        tw, th = max(1, int(iw * scale)), max(1, int(ih * scale))
        ox, oy = box.x + (box.w - tw) // 2, box.y + (box.h - th) // 2
        if self.privacy == "no_picture":
            pygame.draw.rect(surface, PANEL, pygame.Rect(ox, oy, tw, th))
        else:
            # one resize into the picture's size; pygame reads the BGR pixels where they are
            rgb = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR)
            if self.privacy == "pixelate":
                for face in result.faces:  # the box and a margin: hair and ears too
                    b, m = face.box, 0.15 * face.box.w
                    x0, y0 = max(0, int((b.x - m) * scale)), max(0, int((b.y - m) * scale))
                    x1 = min(tw, int((b.x + b.w + m) * scale) + 1)
                    y1 = min(th, int((b.y + b.h + m) * scale) + 1)
                    if x1 > x0 and y1 > y0:
                        rgb[y0:y1, x0:x1] = pixelate(rgb[y0:y1, x0:x1])
            if self.mirror:
                rgb = cv2.flip(rgb, 1)
            surface.blit(pygame.image.frombuffer(np.ascontiguousarray(rgb), (tw, th), "BGR"),
                         (ox, oy))
        thick = max(2, lay.unit // 8)
        font = self.font(int(lay.unit * 1.1))
        for face in result.faces:
            label = face.shown_label
            colour = colour_for(label)
            bw = max(1, int(face.box.w * scale))
            bx = tw - int(face.box.x * scale) - bw if self.mirror else int(face.box.x * scale)
            r = pygame.Rect(ox + bx, oy + int(face.box.y * scale), bw,
                            max(1, int(face.box.h * scale)))
            pygame.draw.rect(surface, colour, r, thick, border_radius=thick * 2)
            word = self.word(label)
            tag = f"{word} {face.shown_confidence:.0%}" if label != UNCERTAIN else word
            if face.track_id is not None:
                tag = f"#{face.track_id} {tag}"
            text = font.render(tag, True, (0, 0, 0))
            tr = text.get_rect()
            tr.inflate_ip(lay.unit // 2, lay.unit // 4)
            tr.bottomleft = (r.x, max(tr.h, r.y))
            pygame.draw.rect(surface, colour, tr, border_radius=thick)
            surface.blit(text, text.get_rect(center=tr.center))

    def _draw_panel(self, surface: pygame.Surface, lay: Layout, result: FrameResult | None) -> None:
        panel = lay.panel
        pygame.draw.rect(surface, PANEL, panel)
        u = lay.unit
        title = self.font(int(u * 1.4)).render("fer-pi", True, TEXT)
        surface.blit(title, (panel.x + u // 2, panel.y + u // 2))
        y = panel.y + u // 2 + title.get_height() + u // 4
        y = self._draw_summary(surface, lay, result, y) + u // 3
        if not self.cards:
            msg = self.font(u).render(self.say("no_faces"), True, DIM)
            surface.blit(msg, (panel.x + u // 2, y))
            return
        now = result.frame.steady_t if result else 0.0
        bar_h = max(4, u // 2)
        card_h = int(u * 2.9) + len(self.labels) * (bar_h + 3) + u // 3
        n_slots = max(c.slot for c in self.cards.values()) + 1
        cols = 1
        while (card_h + u // 3) * -(-n_slots // cols) > panel.bottom - y and cols < 3:
            cols += 1  # many faces: more, narrower columns rather than cards off-screen
        if (card_h + u // 3) * -(-n_slots // cols) > panel.bottom - y:
            self._compact_cards(surface, lay, y)
            return
        col_w = (panel.w - u // 2) // cols
        for card in self.deck.in_slot_order():
            cx = panel.x + u // 4 + (card.slot % cols) * col_w
            cy = y + (card.slot // cols) * (card_h + u // 3)
            rect = pygame.Rect(cx, cy, col_w - u // 4, card_h)
            fade = self.deck.opacity(card, now)
            if fade >= 0.999:
                self._card(surface, rect, card, u, bar_h)
            else:
                layer = pygame.Surface(rect.size, pygame.SRCALPHA)
                self._card(layer, pygame.Rect((0, 0), rect.size), card, u, bar_h)
                layer.set_alpha(max(0, int(255 * fade)))
                surface.blit(layer, rect.topleft)

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

    def _draw_summary(self, surface, lay: Layout, result: FrameResult | None, y: int) -> int:
        """The room at a glance: how many faces show each emotion (the frame's own room
        summary, made with its faces)."""
        u = lay.unit
        faces = result.faces if result else ()
        room = (result.room if result is not None and result.room
                else room_summary(faces, self.labels))
        counts = room["counts"]
        font = self.font(max(10, int(u * 0.9)))
        x = lay.panel.x + u // 2
        n = len(faces)
        head = font.render(self._count(n), True, TEXT)
        surface.blit(head, (x, y))
        x += head.get_width() + u // 2
        for label, count in counts.items():
            if not count:
                continue
            chip = font.render(f"{self.word(label)} {count}", True, (0, 0, 0))
            r = chip.get_rect(topleft=(x, y)).inflate(u // 2, u // 6)
            if r.right > lay.panel.right - u // 4:
                x, y = lay.panel.x + u // 2, y + r.h + u // 6
                r = chip.get_rect(topleft=(x, y)).inflate(u // 2, u // 6)
            pygame.draw.rect(surface, colour_for(label), r, border_radius=u // 4)
            surface.blit(chip, chip.get_rect(center=r.center))
            x = r.right + u // 3
        return y + head.get_height()

    def _card(self, surface: pygame.Surface, rect: pygame.Rect, card: Card, u: int,
              bar_h: int) -> None:
        face = card.face
        label = face.shown_label
        colour = colour_for(label)
        pygame.draw.rect(surface, (44, 44, 58), rect, border_radius=u // 3)
        pygame.draw.rect(surface, colour, pygame.Rect(rect.x, rect.y, u // 4, rect.h),
                         border_radius=u // 6)
        side = int(u * 2.5)
        if card.thumb is None:  # privacy no_picture: the emotion's colour instead of the face
            pygame.draw.rect(surface, colour, pygame.Rect(rect.x + u // 2, rect.y + u // 4,
                                                          side, side), border_radius=u // 2)
        else:
            surface.blit(self._thumb_surface(card, side), (rect.x + u // 2, rect.y + u // 4))
        tx = rect.x + u // 2 + side + u // 2
        word = self.word(label)
        head = f"#{face.track_id} {word}" if face.track_id is not None else word
        surface.blit(self.font(int(u * 1.2)).render(head, True, colour), (tx, rect.y + u // 4))
        sub = f"{face.shown_confidence:.0%}"
        if face.shown is not None:
            sub += "  " + self.say("held", s=f"{face.held_s:.1f}")
        surface.blit(self.font(max(10, int(u * 0.9))).render(sub, True, DIM),
                     (tx, rect.y + int(u * 1.5)))
        probs = face.shown_probs
        small = self.font(max(10, int(u * 0.8)))
        name_w = int(rect.w * 0.38)
        y = rect.y + int(u * 2.9)
        for name, p in zip(self.labels, probs, strict=False):
            surface.blit(small.render(self.word(name), True, DIM), (rect.x + u // 2, y - 1))
            bx = rect.x + u // 2 + name_w
            bw = max(1, rect.right - u // 2 - bx)
            pygame.draw.rect(surface, (60, 60, 76), pygame.Rect(bx, y, bw, bar_h))
            pygame.draw.rect(surface, colour_for(name),
                             pygame.Rect(bx, y, max(1, int(bw * float(p))), bar_h))
            y += bar_h + 3

    def _compact_cards(self, surface, lay: Layout, y: int) -> None:
        """More faces than cards fit: one line each."""
        font = self.font(lay.unit)
        for card in self.deck.in_slot_order():
            if y + lay.unit > lay.panel.bottom:
                break
            label = card.face.shown_label
            tid = f"#{card.face.track_id} " if card.face.track_id is not None else ""
            text = font.render(f"{tid}{self.word(label)} {card.face.shown_confidence:.0%}", True,
                               colour_for(label))
            surface.blit(text, (lay.panel.x + lay.unit // 2, y))
            y += int(lay.unit * 1.2)

    def _draw_overlay(self, surface: pygame.Surface, lay: Layout, stats: BoardStats,
                      n_faces: int) -> None:
        font = self.font(max(10, int(lay.unit * 0.8)))
        parts = [f"{stats.fps:4.1f} FPS", self._count(n_faces)]
        parts += [f"{k} {v:.1f} ms" for k, v in stats.timings_ms.items()]
        text = font.render("  ".join(parts), True, TEXT)
        bg = pygame.Surface((text.get_width() + lay.unit, text.get_height() + lay.unit // 2),
                            pygame.SRCALPHA)
        bg.fill((0, 0, 0, 160))
        surface.blit(bg, (lay.picture.x, lay.picture.bottom - bg.get_height()))
        surface.blit(text, (lay.picture.x + lay.unit // 2,
                            lay.picture.bottom - bg.get_height() + lay.unit // 4))

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

    def _banner(self, surface: pygame.Surface, lay: Layout, status: str) -> None:
        font = self.font(int(lay.unit * 1.5))
        text = font.render(status, True, (255, 255, 255))
        r = text.get_rect(center=lay.picture.center).inflate(lay.unit * 2, lay.unit)
        pygame.draw.rect(surface, (170, 40, 40), r, border_radius=lay.unit // 2)
        surface.blit(text, text.get_rect(center=r.center))


class _CachedFont:
    """A font whose rendered texts are kept: a board redraws the same few dozen words and
    numbers every frame, and rendering text is a good part of a frame's drawing."""

    def __init__(self, font: pygame.font.Font, keep: int = 512):
        self._font, self._keep = font, keep
        self._cache: dict[tuple, pygame.Surface] = {}

    def render(self, text: str, antialias: bool, colour) -> pygame.Surface:
        key = (text, antialias, tuple(colour))
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) >= self._keep:  # the overlay's figures change every frame
                self._cache.clear()
            surf = self._cache[key] = self._font.render(text, antialias, colour)
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

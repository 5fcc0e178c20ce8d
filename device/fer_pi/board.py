"""The emotion display board, drawn onto any pygame Surface.

Drawing is separate from the window (display.py), so tests render the board to
an off-screen surface under SDL_VIDEODRIVER=dummy and check the pixels.
Sizes follow the surface's height, so one layout reads on a 7" 800×480 panel
and on a 1080p TV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pygame

from fer_pi.schema import Face, FrameResult

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
    "uncertain": (110, 110, 110),
}
_FALLBACK = [(0, 180, 200), (200, 0, 120), (120, 200, 0)]
BACKGROUND = (18, 18, 24)
PANEL = (30, 30, 40)
TEXT = (235, 235, 235)
DIM = (150, 150, 160)


def colour_for(label: str) -> tuple[int, int, int]:
    if label in EMOTION_COLOURS:
        return EMOTION_COLOURS[label]
    return _FALLBACK[sum(map(ord, label)) % len(_FALLBACK)]


@dataclass
class BoardStats:
    """What the overlay shows; filled by the pipeline."""

    fps: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)
    status: str = ""  # e.g. "camera lost, retrying"


@dataclass(frozen=True)
class Layout:
    picture: pygame.Rect
    panel: pygame.Rect
    unit: int  # base text size in pixels


def layout(size: tuple[int, int]) -> Layout:
    w, h = size
    unit = max(15, h // 28)
    panel_w = max(240, min(w // 3, 40 * unit))
    if w < 2 * panel_w:  # narrow screens: the picture keeps at least half
        panel_w = w // 2
    return Layout(pygame.Rect(0, 0, w - panel_w, h), pygame.Rect(w - panel_w, 0, panel_w, h), unit)


class Board:
    """Draws a FrameResult: the picture with boxes and tags, a panel of cards, an overlay."""

    def __init__(self, labels: tuple[str, ...], max_cards: int = 8):
        if not pygame.font.get_init():
            pygame.font.init()
        self.labels = labels
        self.max_cards = max_cards
        self._fonts: dict[int, pygame.font.Font] = {}

    def font(self, px: int) -> pygame.font.Font:
        if px not in self._fonts:
            self._fonts[px] = pygame.font.Font(None, px)
        return self._fonts[px]

    def draw(self, surface: pygame.Surface, result: FrameResult | None, stats: BoardStats,
             overlay: bool = True) -> None:
        lay = layout(surface.get_size())
        surface.fill(BACKGROUND)
        if result is not None:
            self._draw_picture(surface, lay, result)
        self._draw_panel(surface, lay, result.faces if result else ())
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
        rgb = cv2.cvtColor(cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR),
                           cv2.COLOR_BGR2RGB)
        surface.blit(pygame.image.frombuffer(rgb.tobytes(), (tw, th), "RGB"), (ox, oy))
        thick = max(2, lay.unit // 8)
        font = self.font(int(lay.unit * 1.1))
        for face in result.faces:
            label = face.shown or face.prediction.label
            colour = colour_for(label)
            r = pygame.Rect(ox + int(face.box.x * scale), oy + int(face.box.y * scale),
                            max(1, int(face.box.w * scale)), max(1, int(face.box.h * scale)))
            pygame.draw.rect(surface, colour, r, thick, border_radius=thick * 2)
            tag = f"{label} {face.prediction.confidence:.0%}" if label != "uncertain" else label
            if face.track_id is not None:
                tag = f"#{face.track_id} {tag}"
            text = font.render(tag, True, (0, 0, 0))
            tr = text.get_rect()
            tr.inflate_ip(lay.unit // 2, lay.unit // 4)
            tr.bottomleft = (r.x, max(tr.h, r.y))
            pygame.draw.rect(surface, colour, tr, border_radius=thick)
            surface.blit(text, text.get_rect(center=tr.center))

    def _draw_panel(self, surface: pygame.Surface, lay: Layout, faces: tuple[Face, ...]) -> None:
        panel = lay.panel
        pygame.draw.rect(surface, PANEL, panel)
        u = lay.unit
        title = self.font(int(u * 1.4)).render("fer-pi", True, TEXT)
        surface.blit(title, (panel.x + u // 2, u // 2))
        y = u // 2 + title.get_height() + u // 2
        if not faces:
            msg = self.font(u).render("no faces in view", True, DIM)
            surface.blit(msg, (panel.x + u // 2, y))
            return
        shown = faces[: self.max_cards]
        bar_h = max(4, u // 2)
        card_h = int(u * 1.6) + len(self.labels) * (bar_h + 3) + u // 2
        cols = 1
        while (card_h + u // 3) * -(-len(shown) // cols) > panel.h - y and cols < 3:
            cols += 1  # many faces: more, narrower columns rather than cards off-screen
        if (card_h + u // 3) * -(-len(shown) // cols) > panel.h - y:
            self._compact_cards(surface, lay, shown, y)
            return
        col_w = (panel.w - u // 2) // cols
        for i, face in enumerate(shown):
            cx = panel.x + u // 4 + (i % cols) * col_w
            cy = y + (i // cols) * (card_h + u // 3)
            self._card(surface, pygame.Rect(cx, cy, col_w - u // 4, card_h), face, u, bar_h)

    def _card(self, surface: pygame.Surface, rect: pygame.Rect, face: Face, u: int,
              bar_h: int) -> None:
        label = face.shown or face.prediction.label
        colour = colour_for(label)
        pygame.draw.rect(surface, (44, 44, 58), rect, border_radius=u // 3)
        pygame.draw.rect(surface, colour, pygame.Rect(rect.x, rect.y, u // 4, rect.h),
                         border_radius=u // 6)
        head = f"#{face.track_id} " if face.track_id is not None else ""
        head += f"{label}  {face.prediction.confidence:.0%}"
        surface.blit(self.font(int(u * 1.2)).render(head, True, colour),
                     (rect.x + u // 2, rect.y + u // 4))
        probs = face.smoothed or face.prediction.probs
        small = self.font(max(10, int(u * 0.8)))
        name_w = int(rect.w * 0.38)
        y = rect.y + int(u * 1.6)
        for name, p in zip(self.labels, probs, strict=False):
            surface.blit(small.render(name, True, DIM), (rect.x + u // 2, y - 1))
            bx = rect.x + u // 2 + name_w
            bw = max(1, rect.right - u // 2 - bx)
            pygame.draw.rect(surface, (60, 60, 76), pygame.Rect(bx, y, bw, bar_h))
            pygame.draw.rect(surface, colour_for(name),
                             pygame.Rect(bx, y, max(1, int(bw * float(p))), bar_h))
            y += bar_h + 3

    def _compact_cards(self, surface, lay: Layout, faces, y: int) -> None:
        """More faces than cards fit: one line each."""
        font = self.font(lay.unit)
        for face in faces:
            if y + lay.unit > lay.panel.bottom:
                break
            label = face.shown or face.prediction.label
            text = font.render(f"{label} {face.prediction.confidence:.0%}", True, colour_for(label))
            surface.blit(text, (lay.panel.x + lay.unit // 2, y))
            y += int(lay.unit * 1.2)

    def _draw_overlay(self, surface: pygame.Surface, lay: Layout, stats: BoardStats,
                      n_faces: int) -> None:
        font = self.font(max(10, int(lay.unit * 0.8)))
        parts = [f"{stats.fps:4.1f} FPS", f"{n_faces} face{'s' if n_faces != 1 else ''}"]
        parts += [f"{k} {v:.1f} ms" for k, v in stats.timings_ms.items()]
        text = font.render("  ".join(parts), True, TEXT)
        bg = pygame.Surface((text.get_width() + lay.unit, text.get_height() + lay.unit // 2),
                            pygame.SRCALPHA)
        bg.fill((0, 0, 0, 160))
        surface.blit(bg, (lay.picture.x, lay.picture.bottom - bg.get_height()))
        surface.blit(text, (lay.picture.x + lay.unit // 2,
                            lay.picture.bottom - bg.get_height() + lay.unit // 4))

    def _banner(self, surface: pygame.Surface, lay: Layout, status: str) -> None:
        font = self.font(int(lay.unit * 1.5))
        text = font.render(status, True, (255, 255, 255))
        r = text.get_rect(center=lay.picture.center).inflate(lay.unit * 2, lay.unit)
        pygame.draw.rect(surface, (170, 40, 40), r, border_radius=lay.unit // 2)
        surface.blit(text, text.get_rect(center=r.center))


def frame_to_array(surface: pygame.Surface) -> np.ndarray:
    """(H, W, 3) RGB copy of a surface: for tests and --save-frames."""
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).swapaxes(0, 1))

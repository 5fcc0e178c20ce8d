"""The board's window: fullscreen or windowed, keys, frame pacing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import pygame

from fer_pi.board.paint import Board, BoardStats
from fer_pi.core.records import FrameResult
from fer_pi.core.stats import RunStats

log = logging.getLogger(__name__)


class DisplayError(Exception):
    pass


# SDL's drivers that draw into memory: chosen on purpose (SDL_VIDEODRIVER, the tests) they
# are fine; fallen back to, they mean there is no screen
OFFSCREEN = ("offscreen", "dummy")


def chosen_driver() -> str:
    """The SDL video driver the user asked for ('' when SDL chooses)."""
    return os.environ.get("SDL_VIDEODRIVER", "")


def has_display() -> bool:
    """A desktop session, or an SDL driver chosen on purpose (kmsdrm on a Pi console)."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver and driver not in ("dummy", "offscreen"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class PygameDisplay:
    """Esc or q quits, f toggles fullscreen, d toggles the overlay, m mirrors the picture.

    ``retry_s`` (board.screen_retry_s) is for a kiosk whose screen is off or unplugged when
    the Pi boots: SDL's KMSDRM finds no connected screen and the board cannot open. Exiting
    would let systemd give up after its restart limit, and the board would never appear
    when the screen is switched on; instead the loop runs without the board (results, MQTT,
    /status and health go on) and the screen is tried again every ``retry_s`` seconds.
    """

    def __init__(self, labels: tuple[str, ...], fullscreen: bool = True,
                 window_size: tuple[int, int] = (1280, 720), overlay: bool = True,
                 max_cards: int = 8, max_fps: int = 60, mirror: bool = False,
                 privacy: str = "off", rotate: int = 0, names: dict[str, str] | None = None,
                 words: dict[str, str] | None = None, retry_s: float = 0.0,
                 now: Callable[[], float] = time.monotonic):
        self.board = Board(labels, max_cards, mirror=mirror, privacy=privacy, rotate=rotate,
                           names=names, words=words)
        self.fullscreen, self.window_size, self.overlay = fullscreen, window_size, overlay
        self.max_fps = max_fps
        self.surface: pygame.Surface | None = None
        self.clock = None
        self.status = ""
        self.night = False  # closed outside source.hours: the board's dark screen
        self.retry_s, self.now = retry_s, now
        self._next_try = 0.0

    @classmethod
    def from_config(cls, labels: tuple[str, ...], b, max_cards: int = 8,
                    names: dict[str, str] | None = None,
                    words: dict[str, str] | None = None) -> PygameDisplay:
        """The window a [board] section (app.config.BoardConfig) describes."""
        return cls(labels, b.fullscreen, (b.window_width, b.window_height), b.overlay,
                   max_cards, b.max_fps, b.mirror, b.privacy, b.rotate, names, words,
                   retry_s=b.screen_retry_s)

    @property
    def state(self) -> str:
        """on; or waiting: retry_s is set and no screen has opened yet."""
        return "on" if self.surface is not None else "waiting"

    def open(self) -> None:
        """Raises DisplayError, unless retry_s is set: then the failure is logged and the
        screen is tried again from show()."""
        try:
            self._open()
        except DisplayError as exc:
            if not self.retry_s:
                raise
            self._wait()
            log.warning("%s; going on without the board, trying again every %g s", exc,
                        self.retry_s)

    def _wait(self) -> None:
        pygame.display.quit()  # the next try starts SDL's video from scratch
        self._next_try = self.now() + self.retry_s

    def _retry(self) -> bool:
        if self.now() < self._next_try:
            return False
        try:
            self._open()
        except DisplayError:
            self._wait()
            return False
        log.warning("the screen is there now: the board is on")
        return True

    def _open(self) -> None:
        try:
            pygame.display.init()
            pygame.font.init()
            fallback = pygame.display.get_driver() in OFFSCREEN
            if fallback and chosen_driver() not in OFFSCREEN:
                # SDL found no screen and fell back to drawing nowhere: a board nobody sees
                raise pygame.error(f"no screen found (SDL fell back to its "
                                   f"{pygame.display.get_driver()!r} driver)")
            self._set_mode()
        except pygame.error as exc:
            pygame.display.quit()
            raise DisplayError(f"cannot open the display ({exc}); use --headless, or set "
                               "SDL_VIDEODRIVER=kmsdrm on a Pi console") from None
        pygame.display.set_caption("fer-pi")
        pygame.mouse.set_visible(not self.fullscreen)
        self.clock = pygame.time.Clock()

    def _set_mode(self) -> None:
        if self.fullscreen:
            self.surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        else:
            self.surface = pygame.display.set_mode(self.window_size, pygame.RESIZABLE)

    def handle_events(self) -> bool:
        """The keys (and the window's close button): False when the user asked to quit.
        The loop (app.loop) calls it, the one place that polls them."""
        if self.surface is None:  # no screen (yet): no keys
            return True
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                return False
            if event.type == pygame.KEYDOWN:
                if event.key in (pygame.K_ESCAPE, pygame.K_q):
                    return False
                if event.key == pygame.K_f:
                    self.fullscreen = not self.fullscreen
                    self._set_mode()
                    pygame.mouse.set_visible(not self.fullscreen)
                if event.key == pygame.K_d:
                    self.overlay = not self.overlay
                if event.key == pygame.K_m:
                    self.board.mirror = not self.board.mirror
        return True

    def show(self, result: FrameResult | None, stats: RunStats) -> bool:
        if self.surface is None:
            if not self.retry_s:
                self._open()
            elif not self._retry():
                return True  # still no screen: the loop goes on without the board
        shown = BoardStats(stats.fps, {k: v for k, v in stats.mean_ms().items()
                                       if k in ("detect", "infer", "draw", "total")},
                           self.status, time.monotonic() if self.night else None)
        self.board.draw(self.surface, result, shown, self.overlay)
        pygame.display.flip()
        self.clock.tick(self.max_fps)
        return True

    def close(self) -> None:
        pygame.display.quit()


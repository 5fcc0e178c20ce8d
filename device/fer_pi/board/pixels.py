"""The camera's picture scaled straight into a surface's own pixels.

A 1080p board draws a 1440x1080 picture every frame. Scaled into a BGR array and then
blitted, it is written twice, the blit converting 24-bit pixels to the screen's 32-bit
ones; on a Pi that is memory bandwidth the loop does not have. Scaled as BGRA straight
into the surface's memory, it is written once (the same pixels on x86_64, within two
grey levels on aarch64, whose OpenCV rounds its 4-channel resize apart; a 1080p board of four
faces off-screen here: 5.5 ms of CPU a draw against 6.0, medians of 20 alternations).
Hand-written because pygame has no call that scales into a sub-rectangle of a surface;
OpenCV's resize writes into the numpy view of it that pygame's buffer protocol gives.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pygame

# XRGB8888 / ARGB8888: the bytes of a pixel in memory (little-endian) are B, G, R, X,
# which is OpenCV's BGRA order
_BGRX_MASKS = (0xFF0000, 0x00FF00, 0x0000FF)


def takes_bgra(surface: pygame.Surface) -> bool:
    """Whether the surface's pixels are 32-bit B, G, R, X bytes (the usual screen format,
    SDL's own surfaces); others are blitted as before."""
    return (surface.get_bitsize() == 32 and tuple(surface.get_masks()[:3]) == _BGRX_MASKS
            and np.little_endian)


class PictureScaler:
    """Scales the camera's pictures into a surface's pixels, frame after frame. It keeps
    its BGRA copy of the picture between frames: a new 1.2 MB array each frame (640x480)
    cost about 1 ms in the loop, in page faults, against 0.2 ms to convert into the same
    one."""

    def __init__(self) -> None:
        self._bgra: np.ndarray | None = None

    def into(self, surface: pygame.Surface, image: np.ndarray, x: int, y: int, w: int, h: int,
             edit: Callable[[np.ndarray], None] | None = None, mirror: bool = False) -> None:
        """A BGR ``image`` scaled (bilinear) into the surface's pixels at (x, y, w, h): the
        surface must take BGRA (takes_bgra). ``edit`` changes the scaled picture in place
        before it is mirrored (privacy's blocks). The surface is locked only inside this
        call: no view of its memory outlives it, so blits onto it work again."""
        sw, sh = surface.get_size()
        if not (0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= sw and y + h <= sh):
            raise ValueError(f"({x}, {y}, {w}, {h}) is not inside the {sw}x{sh} surface")
        if self._bgra is None or self._bgra.shape[:2] != image.shape[:2]:
            self._bgra = np.empty((*image.shape[:2], 4), np.uint8)
        small = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA, dst=self._bgra)
        rows = np.frombuffer(surface.get_buffer(), np.uint8).reshape(sh, surface.get_pitch())
        pixels = rows[y:y + h, 4 * x:4 * (x + w)].reshape(h, w, 4)
        try:
            out = cv2.resize(small, (w, h), dst=pixels, interpolation=cv2.INTER_LINEAR)
            if not np.shares_memory(out, pixels):  # an OpenCV that would not write there
                pixels[...] = out
            del out
            if edit is not None:
                edit(pixels)
            if mirror:
                cv2.flip(pixels, 1, dst=pixels)  # in place (numpy's [:, ::-1]: 25x slower)
        finally:
            del rows, pixels  # the last views of the buffer: the surface is unlocked here

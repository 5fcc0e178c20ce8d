"""A frame marked up as the board marks its picture: each face's box and shown label,
drawn with OpenCV into the frame itself (for an annotated copy of a video or a picture),
with the board's colours, words and privacy."""

from __future__ import annotations

import cv2
import numpy as np

from fer_pi.board.cards import pixelate
from fer_pi.board.layout import BACKGROUND, colour_for
from fer_pi.core.records import FrameResult


def _bgr(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return rgb[2], rgb[1], rgb[0]


def annotate(result: FrameResult, privacy: str = "off",
             names: dict[str, str] | None = None) -> np.ndarray:
    """A BGR copy of the frame with every face's box and shown label (in the room's words,
    ``names``). Privacy as the board's: 'pixelate' blurs each face to blocks, 'no_picture'
    draws the boxes on a plain background (no pixel of the camera's picture kept)."""
    image = result.frame.image
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    h, w = image.shape[:2]
    if privacy == "no_picture":
        out = np.empty((h, w, 3), np.uint8)
        out[:] = _bgr(BACKGROUND)
    else:
        out = np.ascontiguousarray(image[:, :, :3]).copy()
    names = names or {}
    thick = max(2, round(min(h, w) / 240))
    scale = max(0.5, min(h, w) / 720)
    for face in result.faces:
        b = face.box
        x0, y0 = max(0, b.x), max(0, b.y)
        x1, y1 = min(w, b.x + b.w), min(h, b.y + b.h)
        if privacy == "pixelate" and x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = pixelate(out[y0:y1, x0:x1])
        label = face.shown_label
        colour = _bgr(colour_for(label))
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, thick)
        text = names.get(label, label)
        if face.track_id is not None:
            text = f"#{face.track_id} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = max(th + base + thick, b.y)  # above the box, inside the frame at its top
        cv2.rectangle(out, (b.x, ty - th - base - thick), (b.x + tw + 2 * thick, ty), colour,
                      cv2.FILLED)
        cv2.putText(out, text, (b.x + thick, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thick, cv2.LINE_AA)
    return out

"""Face crops for the classifier: a margin around the box, padded where it leaves the frame."""

from __future__ import annotations

import cv2
import numpy as np

from fer_pi.schema import FaceBox


def crop_face(gray: np.ndarray, box: FaceBox, size: tuple[int, int] = (48, 48),
              margin: float = 0.1) -> np.ndarray:
    """A square crop of side max(w, h)·(1 + 2·margin) centred on the box, resized to ``size``.

    Parts outside the frame are filled by replicating the border, as FER2013's
    tightly-cropped faces have no black bars. Always returns ``size[::-1]`` uint8
    (with the image's channels, for a colour image).
    """
    h, w = gray.shape[:2]
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    side = max(1, int(round(max(box.w, box.h, 1) * (1.0 + 2.0 * max(0.0, margin)))))
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    x1, y1 = x0 + side, y0 + side
    blank = np.zeros((size[1], size[0], *gray.shape[2:]), np.uint8)
    if w == 0 or h == 0:
        return blank
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 <= sx0 or sy1 <= sy0:  # box entirely outside the frame
        return blank
    patch = gray[sy0:sy1, sx0:sx1]
    pads = (sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1)
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > max(size) else cv2.INTER_LINEAR
    return cv2.resize(patch, size, interpolation=interp)

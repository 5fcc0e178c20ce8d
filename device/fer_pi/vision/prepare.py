"""Face crops for the classifier, prepared the way the model's training faces were.

How a face is cut and normalised is a property of the model, not of the device: the
model's metadata (``input.face``) says it, the trainer writes it from how it prepared
its own data, and this module applies it. A setting overrides it only when set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fer_pi.core.records import FaceBox
from fer_pi.vision.align import upright_frame


@dataclass(frozen=True)
class FacePrep:
    """Crop geometry relative to the detector's box, and the crop's normalisation.

    The defaults are what fer-pi did before models carried this (a 10 % margin on each
    side, no equalisation): a model without ``input.face`` in its metadata gets them.
    """

    scale: float = 1.2  # crop side / detector box side (1 + 2 * margin)
    shift_y: float = 0.0  # crop centre below the box centre, in box sides
    equalize: bool = False  # histogram-equalise the crop, as FER2013's faces are

    def __post_init__(self):
        if not (0.5 <= self.scale <= 3.0) or not (-0.5 <= self.shift_y <= 0.5):
            raise ValueError(f"face crop scale {self.scale} (0.5..3) or shift_y "
                             f"{self.shift_y} (-0.5..0.5) out of range")

    @classmethod
    def from_metadata(cls, face: dict) -> FacePrep:
        """``input.face`` of a model's metadata; raises ValueError naming the bad key."""
        if not isinstance(face, dict):
            raise ValueError("input.face must be an object")
        kw = {}
        for key, name, typ in (("crop_scale", "scale", float), ("crop_shift_y", "shift_y", float),
                               ("equalize", "equalize", bool)):
            if key in face:
                value = face[key]
                ok = isinstance(value, bool) if typ is bool else (
                    isinstance(value, int | float) and not isinstance(value, bool))
                if not ok:
                    raise ValueError(f"input.face.{key} must be {typ.__name__}, got {value!r}")
                kw[name] = typ(value)
        return cls(**kw)

    def to_metadata(self) -> dict:
        return {"crop_scale": round(self.scale, 4), "crop_shift_y": round(self.shift_y, 4) + 0.0,
                "equalize": self.equalize}

    def with_overrides(self, margin: float | None = None, equalize: bool | None = None) -> FacePrep:
        """A setting the user gave wins over the model's own (``None``: not given)."""
        from dataclasses import replace

        out = self
        if margin is not None:
            out = replace(out, scale=1.0 + 2.0 * margin, shift_y=0.0)
        if equalize is not None:
            out = replace(out, equalize=equalize)
        return out

    def crop(self, gray: np.ndarray, box: FaceBox, size: tuple[int, int] = (48, 48)) -> np.ndarray:
        """The face as the model expects it: ``size[::-1]`` uint8. A box with landmarks
        (YuNet's) is framed as Haar would frame the face upright, and turned so its eyes
        are level, as FER2013's faces are; a box without (Haar's) is cut as it is."""
        if box.landmarks is not None:
            cx, cy, side, roll = upright_frame(box.landmarks)
            a = math.radians(roll)
            cx -= math.sin(a) * self.shift_y * side  # shift_y along the face's own "down"
            cy += math.cos(a) * self.shift_y * side
            out = crop_turned(gray, cx, cy, side * self.scale, roll, size)
        else:
            side = max(box.w, box.h, 1)
            cx = box.x + box.w / 2.0
            cy = box.y + box.h / 2.0 + self.shift_y * side
            out = crop_square(gray, cx, cy, side * self.scale, size)
        if self.equalize and out.ndim == 2:
            out = cv2.equalizeHist(out)
        return out


def crop_face(gray: np.ndarray, box: FaceBox, size: tuple[int, int] = (48, 48),
              margin: float = 0.1) -> np.ndarray:
    """A square crop of side max(w, h)·(1 + 2·margin) centred on the box, resized to ``size``
    (the board's face cards use it; the classifier's crops go through FacePrep)."""
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    return crop_square(gray, cx, cy, max(box.w, box.h, 1) * (1.0 + 2.0 * max(0.0, margin)), size)


def crop_square(image: np.ndarray, cx: float, cy: float, side: float,
                size: tuple[int, int]) -> np.ndarray:
    """The square of ``side`` pixels centred on (cx, cy), resized to ``size``.

    Parts outside the frame are filled by replicating the border, as FER2013's
    tightly-cropped faces have no black bars. Always returns ``size[::-1]`` uint8
    (with the image's channels, for a colour image).
    """
    h, w = image.shape[:2]
    side = max(1, int(round(side)))
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    x1, y1 = x0 + side, y0 + side
    blank = np.zeros((size[1], size[0], *image.shape[2:]), np.uint8)
    if w == 0 or h == 0:
        return blank
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 <= sx0 or sy1 <= sy0:  # box entirely outside the frame
        return blank
    patch = image[sy0:sy1, sx0:sx1]
    pads = (sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1)
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > max(size) else cv2.INTER_LINEAR
    return cv2.resize(patch, size, interpolation=interp)


def crop_turned(image: np.ndarray, cx: float, cy: float, side: float, angle_deg: float,
                size: tuple[int, int]) -> np.ndarray:
    """The square of ``side`` pixels centred on (cx, cy) and turned by ``angle_deg`` (the
    eye line's angle: the face comes out upright), resized to ``size``.

    A square half as large again is cut upright first (crop_square: replicated borders,
    INTER_AREA when shrinking, as for an upright face), then turned at the output's own
    resolution and its middle kept: the turn costs a 48x48 warp, not a frame's."""
    if abs(angle_deg) < 0.5:
        return crop_square(image, cx, cy, side, size)
    big = (int(round(size[0] * 1.5)), int(round(size[1] * 1.5)))
    patch = crop_square(image, cx, cy, side * 1.5, big)
    m = cv2.getRotationMatrix2D(((big[0] - 1) / 2.0, (big[1] - 1) / 2.0), angle_deg, 1.0)
    m[0, 2] -= (big[0] - size[0]) / 2.0
    m[1, 2] -= (big[1] - size[1]) / 2.0
    return cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)

"""Training faces as the device's camera and detector deliver them.

FER2013's faces are 48x48, histogram-equalised and framed about as OpenCV's Haar box
frames a face. On the device a face is a region of a camera frame: some size, some
light, blur, sensor noise and JPEG, a Haar box that sits a little off and a little too
big or small, and then the device's own crop (``fer_pi.vision.prepare.FacePrep``). This
module puts each training face through that: it renders the face into a frame at a
random size, degrades it, draws a jittered detector box and cuts it with the same
FacePrep the model's metadata will tell the device to use.

The framing itself is measured, not assumed: ``measure_framing`` runs the device's
Haar detector over FER2013 faces placed in larger frames and returns the FacePrep that
cuts a Haar box back to FER2013's framing.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fer_pi.core.records import FaceBox
from fer_pi.vision.prepare import FacePrep


@dataclass(frozen=True)
class CameraAug:
    """Ranges of the simulated camera and detector. ``p`` is the probability of each
    photometric degradation (0: geometry only)."""

    p: float = 0.5
    face_px: tuple[float, float] = (32.0, 128.0)  # face side in the camera frame (log-uniform)
    box_scale_sd: float = 0.08  # detector box side, log-normal around the framing's own
    box_shift_sd: float = 0.04  # detector box centre, in face sides
    aspect: float = 0.12  # faces stretched by exp(U(-a, a)) wide or tall (squashed pictures)
    rotation_deg: float = 10.0
    flip: bool = True
    gamma: float = 0.5  # exp(U(-g, g))
    contrast: tuple[float, float] = (0.5, 1.2)
    brightness: float = 40.0  # grey levels, U(-b, b)
    blur_px: float = 1.5  # Gaussian sigma in camera pixels, U(0, b)
    noise: float = 10.0  # Gaussian sensor noise sd in grey levels, U(0, n)
    jpeg: tuple[int, int] = (30, 95)

    def to_dict(self) -> dict:
        return asdict(self)


def camera_view(face: np.ndarray, rng: np.random.Generator, prep: FacePrep,
                aug: CameraAug, framing: tuple[float, float] = (1.0, 0.0)) -> np.ndarray:
    """One training face (48x48 uint8) as the device would cut it from a camera frame.

    ``framing`` is (Haar box side / face side, box centre offset down / face side), what
    ``measure_framing`` found; the jittered box is drawn around it."""
    n = face.shape[0]
    s = float(np.exp(rng.uniform(np.log(aug.face_px[0]), np.log(aug.face_px[1]))))
    # room for the jittered box (a few sd of it) and no more: the canvas is most of the cost
    canvas = int(np.ceil(1.7 * s))
    a = float(np.exp(rng.uniform(-aug.aspect, aug.aspect)))
    k = s / n
    theta = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
    flip = aug.flip and rng.random() < 0.5
    # source face centre -> canvas centre, scaled (stretched by a), rotated, maybe mirrored
    sx, sy = k * a, k / a
    c, si = np.cos(theta), np.sin(theta)
    m = np.array([[c * sx, -si * sy], [si * sx, c * sy]])
    if flip:
        m[:, 0] *= -1
    centre_src = np.array([(n - 1) / 2.0, (n - 1) / 2.0])
    centre_dst = np.array([(canvas - 1) / 2.0, (canvas - 1) / 2.0])
    affine = np.hstack([m, (centre_dst - m @ centre_src)[:, None]])
    img = cv2.warpAffine(face, affine, (canvas, canvas), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT101).astype(np.float32)
    p = aug.p
    if rng.random() < p:  # exposure: gamma, contrast about the mean, brightness
        g = float(np.exp(rng.uniform(-aug.gamma, aug.gamma)))
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** g
        mean = float(img.mean())
        img = (img - mean) * rng.uniform(*aug.contrast) + mean + rng.uniform(-aug.brightness,
                                                                            aug.brightness)
    if rng.random() < p:
        sigma = rng.uniform(0.0, aug.blur_px)
        if sigma > 0.2:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
    if rng.random() < p:
        noise = np.empty(img.shape, np.float32)
        cv2.setRNGSeed(int(rng.integers(1 << 31)))
        cv2.randn(noise, 0.0, float(rng.uniform(0.0, aug.noise)))
        img += noise
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < p:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY,
                                             int(rng.integers(aug.jpeg[0], aug.jpeg[1] + 1))])
        if ok:
            img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    # the detector's box: the framing's own size and offset, jittered
    ratio, dy = framing
    b = s * ratio * float(np.exp(rng.normal(0.0, aug.box_scale_sd)))
    cx = centre_dst[0] + rng.normal(0.0, aug.box_shift_sd) * s
    cy = centre_dst[1] + (dy + rng.normal(0.0, aug.box_shift_sd)) * s
    side = max(1, int(round(b)))
    box = FaceBox(int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side, side)
    return prep.crop(img, box, (n, n))


_COUNTER = itertools.count()


def camera_batch(x: np.ndarray, seed: int, prep: FacePrep, aug: CameraAug,
                 framing: tuple[float, float]) -> np.ndarray:
    """A batch (N, 48, 48[, 1]) through camera_view; each call draws new randomness."""
    rng = np.random.default_rng([int(seed), next(_COUNTER)])
    faces = x.reshape(x.shape[0], x.shape[1], x.shape[2]).astype(np.uint8)
    out = np.stack([camera_view(f, rng, prep, aug, framing) for f in faces])
    return out.reshape(x.shape).astype(np.float32)


def measure_framing(x: np.ndarray, n: int = 600, seed: int = 0,
                    face_px: int = 96, cascade: str = "frontalface_default") -> dict:
    """Where the device's Haar detector puts its box on FER2013 faces.

    Each face is scaled to ``face_px`` and placed (mirrored at its borders) in a frame
    three times its size; the default cascade runs as the device runs it. Returns the
    median box side and centre offset in face sides, their spread, how many faces were
    found, and the FacePrep that cuts such a box back to the training framing."""
    from fer_pi.vision.detect import HaarDetector, find_cascade

    det = HaarDetector(min_size=48, cascade=find_cascade(f"haarcascade_{cascade}.xml"))
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=min(n, len(x)), replace=False)
    ratios, dxs, dys = [], [], []
    centre = 1.5 * face_px
    for i in idx:
        big = cv2.resize(x[i], (face_px, face_px), interpolation=cv2.INTER_LINEAR)
        frame = cv2.copyMakeBorder(big, face_px, face_px, face_px, face_px,
                                   cv2.BORDER_REFLECT101)
        near = [b for b in det.detect(frame)
                if abs(b.center[0] - centre) < face_px / 3 and abs(b.center[1] - centre) < face_px / 3]
        if not near:
            continue
        b = max(near, key=lambda q: q.w)
        ratios.append(b.w / face_px)
        dxs.append((b.center[0] - centre) / face_px)
        dys.append((b.center[1] - centre) / face_px)
    if len(ratios) < 20:
        raise ValueError(f"Haar found only {len(ratios)} of {len(idx)} faces: cannot measure "
                         "the framing")
    ratio, dy = float(np.median(ratios)), float(np.median(dys))
    prep = FacePrep(scale=1.0 / ratio, shift_y=-dy / ratio, equalize=True)
    return {"cascade": cascade, "faces": len(idx), "found": len(ratios),
            "box_side": round(ratio, 4),
            "box_dx": round(float(np.median(dxs)), 4), "box_dy": round(dy, 4),
            "box_side_iqr": [round(float(q), 4) for q in np.percentile(ratios, [25, 75])],
            "prep": prep.to_metadata()}

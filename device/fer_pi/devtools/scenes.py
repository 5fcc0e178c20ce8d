"""Scenes with ground truth for the detection benchmark: real faces pasted at known sizes
into natural and textured backgrounds, still or moving, with sensor noise.

Faces come from the real-face development set (../shared/data/realfaces, head-and-shoulders
photographs) when it is there, else from scikit-image's astronaut photo; backgrounds are
scikit-image's bundled pictures (public domain or CC0). Nothing is written to disk: the
benchmark composes what it measures, so no face picture is ever copied into the project.
The true face box of each pasted photo is the Haar box found on the photo at full size,
scaled and moved with it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_pi.core.records import FaceBox
from fer_pi.vision.detect import HaarDetector, to_gray

# bundled with scikit-image (no download), and with no face in them
BACKGROUNDS = ("coffee", "rocket", "brick", "grass", "gravel", "page", "moon", "coins")
SIZE_BUCKETS = ((32, 48), (48, 64), (64, 96), (96, 201))


@dataclass(frozen=True)
class FacePhoto:
    image: np.ndarray  # BGR head-and-shoulders picture
    box: FaceBox  # the face in it, as Haar finds it at full size
    name: str


@dataclass(frozen=True)
class Scene:
    frame: np.ndarray
    truth: tuple[FaceBox, ...]  # one box per visible face, in frame pixels
    ids: tuple[int, ...] = ()  # in a clip: which person each box is
    # faces there but not required: partly covered by a nearer one, or partly out of the
    # frame; finding them is neither a hit nor a false face
    extra: tuple[FaceBox, ...] = ()
    tilts: tuple[float, ...] = ()  # each true face's head tilt in degrees, where tilted


def realfaces_dir() -> Path | None:
    env = os.environ.get("FER_REALFACES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [Path.cwd().parent / "shared" / "data" / "realfaces",
                   here.parents[4] / "shared" / "data" / "realfaces"]
    return next((c for c in candidates if (c / "MANIFEST.tsv").is_file()), None)


def face_photos(limit: int = 60, seed: int = 0) -> tuple[list[FacePhoto], str]:
    """Head-and-shoulders photos with their face boxes, and where they came from."""
    det = HaarDetector(min_size=40, detect_width=0)
    folder = realfaces_dir()
    photos = []
    if folder is not None:
        rows = list(csv.DictReader((folder / "MANIFEST.tsv").open(), delimiter="\t"))
        rng = np.random.default_rng(seed)
        for i in rng.permutation(len(rows))[: limit * 2]:
            img = cv2.imread(str(folder / rows[i]["local_file"]))
            boxes = det.detect(to_gray(img)) if img is not None else []
            if len(boxes) == 1:
                photos.append(FacePhoto(img, boxes[0], rows[i]["local_file"]))
            if len(photos) >= limit:
                break
        if photos:
            return photos, f"realfaces ({len(photos)} photos of its {len(rows)})"
    return [astronaut_photo()], "scikit-image astronaut"


def astronaut_photo() -> FacePhoto:
    """The bundled astronaut's head and shoulders, with the face box the cascade finds."""
    from fer_pi.sources.demo import astronaut_face_bgr

    img = astronaut_face_bgr()
    (box,) = HaarDetector(detect_width=0).detect(to_gray(img))
    return FacePhoto(img, box, "astronaut")


def backgrounds(width: int, height: int) -> list[np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        from fer_pi.sources.demo import NeedsExtra

        raise NeedsExtra("the benchmark's backgrounds are scikit-image's bundled pictures: "
                         "pip install 'fer-pi[demo]'") from None

    out = []
    for name in BACKGROUNDS:
        try:
            img = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a picture this scikit-image lacks or must download
            continue
        img = img if img.ndim == 3 else np.dstack([img] * 3)
        img = cv2.cvtColor(img[:, :, :3].astype(np.uint8), cv2.COLOR_RGB2BGR)
        out.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))
    return out


def paste(frame: np.ndarray, photo: FacePhoto, face_w: float, cx: float, cy: float,
          tilt: float = 0.0) -> FaceBox:
    """The photo scaled so its face is ``face_w`` wide and centred at (cx, cy), the head
    tilted by ``tilt`` degrees (counter-clockwise on the screen) about the face's centre;
    returns the true face box: the face's own upright box, where it is (clipped pasting:
    a face may leave the frame)."""
    s = face_w / photo.box.w
    ph, pw = photo.image.shape[:2]
    tw, th = max(1, round(pw * s)), max(1, round(ph * s))
    img = cv2.resize(photo.image, (tw, th), interpolation=cv2.INTER_AREA if s < 1
                     else cv2.INTER_LINEAR)
    fx, fy = photo.box.center
    mask = None
    if tilt:
        m = cv2.getRotationMatrix2D((fx * s, fy * s), tilt, 1.0)
        img = cv2.warpAffine(img, m, (tw, th), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT)
        # only the photo's own pixels: its corners turned away leave the background showing
        mask = cv2.warpAffine(np.ones((th, tw), np.uint8), m, (tw, th)) > 0
    x0, y0 = round(cx - fx * s), round(cy - fy * s)
    h, w = frame.shape[:2]
    ax0, ay0, ax1, ay1 = max(0, x0), max(0, y0), min(w, x0 + tw), min(h, y0 + th)
    if ax1 > ax0 and ay1 > ay0:
        part = img[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]
        if mask is None:
            frame[ay0:ay1, ax0:ax1] = part
        else:
            keep = mask[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]
            frame[ay0:ay1, ax0:ax1][keep] = part[keep]
    side = photo.box.w * s
    return FaceBox(round(cx - side / 2), round(cy - side / 2), round(side), round(side))


def noisy(frame: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    if sd <= 0:
        return frame
    return np.clip(frame + rng.normal(0, sd, frame.shape), 0, 255).astype(np.uint8)


# the pose scenes' head tilts, each equally often, to either side
TILTS = (0, 10, 20, 30, 40)


def still_scenes(n: int, photos: list[FacePhoto], bgs: list[np.ndarray], seed: int = 0,
                 width: int = 640, height: int = 480, tilted: bool = False) -> list[Scene]:
    """One to six faces of 32-200 px (log-uniform), not overlapping, sensor noise 2-6;
    ``tilted``: each head tilted by one of TILTS, to the left or the right (Scene.tilts)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        frame = bgs[int(rng.integers(len(bgs)))].copy()
        want = int(rng.integers(1, 7))
        truth: list[FaceBox] = []
        tilts: list[float] = []
        for _ in range(want * 20):
            if len(truth) == want:
                break
            w = float(np.exp(rng.uniform(np.log(32), np.log(200))))
            cx = rng.uniform(w * 0.8, width - w * 0.8)
            cy = rng.uniform(w * 0.9, height - w * 1.2)
            cand = FaceBox(round(cx - 1.3 * w), round(cy - 1.3 * w), round(2.6 * w), round(3 * w))
            if any(cand.iou(FaceBox(t.x - t.w, t.y - t.h, 3 * t.w, 3 * t.h)) > 0 for t in truth):
                continue  # head-and-shoulders patches must not overlap
            tilt = float(rng.choice(TILTS) * rng.choice((-1, 1))) if tilted else 0.0
            truth.append(paste(frame, photos[int(rng.integers(len(photos)))], w, cx, cy, tilt))
            tilts.append(tilt)
        out.append(Scene(noisy(frame, rng.uniform(2, 6), rng), tuple(truth),
                         tilts=tuple(tilts)))
    return out


def moving_clip(photos: list[FacePhoto], bg: np.ndarray, frames: int, seed: int,
                widths: tuple[float, ...] = (55, 55, 55, 55), width: int = 640,
                height: int = 480, rock: float = 0.0) -> list[Scene]:
    """Faces walking across a room: constant speeds of 0.5-3 px a frame, two of them on
    crossing paths (the nearer one passes in front), one leaving the frame and coming back;
    ``rock``: each head tilts from side to side, up to that many degrees, once every 2-4 s.
    """
    rng = np.random.default_rng(seed)
    n = len(widths)
    who = [photos[int(rng.integers(len(photos)))] for _ in range(n)]
    start = np.array([[rng.uniform(80, width - 80), rng.uniform(90, height - 110)]
                      for _ in range(n)])
    vel = np.array([[rng.uniform(-3, 3), rng.uniform(-0.7, 0.7)] for _ in range(n)])
    if n >= 2:  # two on crossing paths at the same height
        start[0], start[1] = (90, height * 0.45), (width - 90, height * 0.45 + 8)
        vel[0], vel[1] = (1.6, 0.0), (-1.6, 0.0)
    # frames (at 30 a second) and phase of each head's rocking; drawn only when it rocks, so
    # the upright clips stay the frames they always were
    periods = [rng.uniform(60, 120) for _ in range(n)] if rock else [1.0] * n
    phases = [rng.uniform(0, 2 * np.pi) for _ in range(n)] if rock else [0.0] * n
    out = []
    for t in range(frames):
        frame = bg.copy()
        truth = []
        tilt = [rock * float(np.sin(2 * np.pi * t / periods[i] + phases[i])) for i in range(n)]
        order = sorted(range(n), key=lambda i: widths[i])  # smaller (farther) first
        for i in order:
            x, y = start[i] + vel[i] * t
            if i >= 2:  # the others bounce off the walls; face 2 walks out and back in
                span = width + (240 if i == 2 else -160)
                x = (start[i][0] + vel[i][0] * t) % (2 * span)
                x = (2 * span - x if x > span else x) - (120 if i == 2 else -80)
                y = float(np.clip(y, 90, height - 110))
            truth.append((i, paste(frame, who[i], widths[i], x, y, tilt[i])))
        boxes, ids, extra, tilts = [], [], [], []
        for i, b in sorted(truth):
            covered = any(j != i and widths[j] >= widths[i] and order.index(j) > order.index(i)
                          and b.iou(o) > 0.05 for j, o in truth)
            inside = b.x >= -0.2 * b.w and b.y >= 0 and b.x + 0.8 * b.w <= width \
                and b.y + b.h <= height
            if inside and not covered:  # what a person would count as visible
                boxes.append(b)
                ids.append(i)
                tilts.append(tilt[i])
            else:
                extra.append(b)
        out.append(Scene(noisy(frame, 3.0, rng), tuple(boxes), tuple(ids), tuple(extra),
                         tuple(tilts) if rock else ()))
    return out


def match(found: list[FaceBox], truth: tuple[FaceBox, ...], min_iou: float = 0.35,
          extra: tuple[FaceBox, ...] = ()) -> dict:
    """Greedy one-to-one matching by IoU: which truths were found, how many false faces
    (a box on a face in ``extra`` is neither)."""
    pairs = sorted(((f.iou(t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
                   reverse=True)
    used_f, used_t, hit = set(), set(), {}
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            hit[j] = i
    spare = [f for i, f in enumerate(found) if i not in used_f]
    false = sum(not any(f.iou(e) >= min_iou for e in extra) for f in spare)
    return {"hit": hit, "false": false}


def bucket(w: int) -> str:
    for lo, hi in SIZE_BUCKETS:
        if lo <= w < hi:
            return f"{lo}-{hi - 1}"
    return "other"

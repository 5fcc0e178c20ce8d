"""How steady the board's label is on a still face, and how fast it follows a new one.

    python -m fer_tools.flicker [--model vgg] [--faces 600] [--frames 90] [--json]

There is no labelled footage of a room to tune the smoother on, so this builds the nearest
thing from PublicTest (validation) faces. Each face is held still for ``--frames`` camera
frames; every frame is cut again from a box with a Haar detection's jitter (centre and
size moved by a random ``--jitter`` of the box side) from a camera-sized copy with sensor
noise, through the device's own crop (the model's ``FacePrep``), ``Classifier`` (int8,
its calibration, flip TTA as the board runs it) and ``Smoother``. Then the face is replaced by another
face the model labels differently, as when an expression changes. Per smoother setting:

- label changes per minute on a still face after its first second (a board at ``--fps``;
  the raw per-frame label is ``--no-smooth``),
- how often the shown label is right, and how often it is "uncertain",
- frames until the board shows the new face's label (median, 90th percentile), and how
  often it never does within ``--frames``.

What it is not: real footage. The jitter here is independent from one detection to the
next, and a still PublicTest face has no blinks, speech or head
turns; the swap to another person's face is a sharper change than an expression's. So the
figures compare settings with one another; they are not a promise of flicker in a room.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from fer_pi.core.labels import LABELS, UNCERTAIN
from fer_pi.core.records import FaceBox
from fer_pi.vision.prepare import FacePrep
from fer_pi.vision.smooth import Smoother, SmoothSettings
from fer_tools.cliutil import main_wrapper
from fer_tools.data import DataError, file_sha256, load_split, stratified_subset

LEGACY = FacePrep()  # a model without input.face metadata: 10 % margin, no equalisation
CAMERA_SCALE = 3  # a 48-pixel face shown 144 pixels tall: a face a metre or two away at 640x480
BORDER = 0.5  # room around the face in the camera-sized copy, as a fraction of its side


class FlickerError(Exception):
    pass


def camera_copy(face: np.ndarray, prep: FacePrep = LEGACY) -> tuple[np.ndarray, FaceBox]:
    """The face enlarged as a camera would see it, with its borders replicated around it,
    and the box a perfect detector would give (the model's crop geometry taken off)."""
    side = face.shape[0] * CAMERA_SCALE
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    pad = int(side * BORDER)
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    inner = side / prep.scale  # the crop is prep.scale times the box
    c = pad + side / 2
    cy = c - prep.shift_y * inner
    return big, FaceBox(int(round(c - inner / 2)), int(round(cy - inner / 2)),
                        int(round(inner)), int(round(inner)))


def jittered_crops(face: np.ndarray, frames: int, jitter: float, noise: float,
                   rng: np.random.Generator, detect_every: int = 1,
                   prep: FacePrep = LEGACY) -> np.ndarray:
    """``frames`` crops of one still face, from a box moved by N(0, jitter·side) and scaled
    by exp(N(0, jitter)) at each detection (every ``detect_every`` frames; the tracker
    keeps a still face's box in between), from a copy with N(0, noise) grey-level sensor
    noise in every frame."""
    big, box = camera_copy(face, prep)
    out = np.empty((frames, 48, 48), np.uint8)
    jbox = box
    for t in range(frames):
        if t % max(1, detect_every) == 0:
            dx, dy = rng.normal(0.0, jitter * box.w, 2)
            w = max(8, int(round(box.w * float(np.exp(rng.normal(0.0, jitter))))))
            cx, cy = box.x + box.w / 2 + dx, box.y + box.h / 2 + dy
            jbox = FaceBox(int(round(cx - w / 2)), int(round(cy - w / 2)), w, w)
        frame = big
        if noise > 0:
            frame = np.clip(big + rng.normal(0.0, noise, big.shape), 0, 255).astype(np.uint8)
        out[t] = prep.crop(frame, jbox)
    return out


def shown_labels(probs: np.ndarray, settings: SmoothSettings, fps: float = 30.0) -> list[str]:
    """What the board shows frame by frame for one face's (frames, 7) probabilities."""
    sm = Smoother(LABELS, settings)
    return [sm.update(0, p, t / fps).shown for t, p in enumerate(probs)]


def changes(shown: list[str], settle: int = 0) -> int:
    """How many times the shown label changes from frame ``settle`` on (a new face's first
    label may be corrected once its average has settled: that is not flicker)."""
    tail = shown[max(0, settle - 1):]
    return sum(a != b for a, b in zip(tail, tail[1:], strict=False))


def frames_to_follow(shown: list[str], start: int, target: str) -> int | None:
    """Frames after ``start`` until ``target`` is shown; None if it never is."""
    for i, s in enumerate(shown[start:]):
        if s == target:
            return i
    return None


def swap_partner(pred: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For each face, the next face in ``order`` that the model labels differently (the
    board must then change its label); -1 when none exists."""
    partner = np.full(len(pred), -1)
    ring = list(order)
    for k, i in enumerate(ring):
        for j in ring[k + 1:] + ring[:k]:
            if pred[j] != pred[i]:
                partner[i] = j
                break
    return partner


def measure(probs: np.ndarray, y: np.ndarray, settings: SmoothSettings, fps: float,
            partner: np.ndarray) -> dict:
    """One setting's figures over all faces (``probs``: faces × frames × 7)."""
    n, frames = probs.shape[:2]
    settle = min(frames // 3, int(round(fps)))  # the first second, at most a third
    flips, right, unsure, follow = [], 0, 0, []
    for i in range(n):
        # one smoother run per face: the still part, then (with a partner) the swap; the
        # smoother sees the same frames either way, so the still part is the first frames
        j = partner[i]
        seq = probs[i] if j < 0 else np.concatenate([probs[i], probs[j]])
        both = shown_labels(seq, settings, fps)
        shown = both[:frames]
        flips.append(changes(shown, settle))
        right += sum(s == LABELS[y[i]] for s in shown)
        unsure += sum(s == UNCERTAIN for s in shown)
        if j >= 0:
            target = LABELS[int(probs[j].mean(0).argmax())]
            follow.append(frames_to_follow(both, frames, target))
    seconds = (frames - settle) / fps
    got = [f for f in follow if f is not None]
    return {
        "changes_per_min": 60.0 * float(np.mean(flips)) / seconds,
        "still_faces_with_a_change": float(np.mean(np.asarray(flips) > 0)),
        "accuracy_shown": right / (n * frames),
        "uncertain_share": unsure / (n * frames),
        "follow_frames_p50": float(np.median(got)) if got else None,
        "follow_frames_p90": float(np.percentile(got, 90)) if got else None,
        "never_followed": 1.0 - len(got) / len(follow) if follow else None,
    }


def settings_grid(base: SmoothSettings) -> list[tuple[str, SmoothSettings]]:
    """Raw labels, the defaults, and each knob moved alone around the defaults."""
    grid = [("raw (--no-smooth)", SmoothSettings.off()), ("defaults", base)]
    moves = {"tau_s": (0.0, 0.1, 0.3, 0.5), "margin": (0.0, 0.05, 0.1, 0.2),
             "hold_s": (0.0, 0.1, 0.2, 0.3), "uncertain_lead": (0.0, 0.05, 0.1, 0.15),
             "uncertain_band": (0.0, 0.05, 0.1)}
    for knob, values in moves.items():
        for v in values:
            if v == getattr(base, knob):
                continue
            s = SmoothSettings(**{**asdict(base), knob: v})
            grid.append((f"{knob} = {v}", s))
    return grid


def classify_faces(clf, faces: np.ndarray, args) -> np.ndarray:
    """(faces, frames, 7): the device's probabilities for every jittered frame of each face."""
    rng = np.random.default_rng(args.seed)
    probs = np.empty((len(faces), args.frames, len(LABELS)), np.float32)
    for k, face in enumerate(faces):
        crops = jittered_crops(face, args.frames, args.jitter, args.noise, rng,
                               args.detect_every, clf.info.face)
        for t, crop in enumerate(crops):
            probs[k, t] = clf.probabilities(crop)
        if (k + 1) % 100 == 0 or k + 1 == len(faces):
            print(f"[{k + 1}/{len(faces)}] faces classified", file=sys.stderr, flush=True)
    return probs


def load_cache(path: Path, key: str) -> np.ndarray | None:
    """The probabilities of an earlier run with the same model, data and jitter, so the
    smoother's settings can be studied again without minutes of inference."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            if str(z["key"]) == key:
                print(f"probabilities from {path}", file=sys.stderr)
                return z["probs"]
        why = "is from another model, data or setting"
    except (OSError, ValueError, KeyError) as exc:  # cut short, or not ours
        why = f"cannot be read ({type(exc).__name__})"
    print(f"{path} {why}: classifying again", file=sys.stderr)
    return None


def save_cache(path: Path, key: str, probs: np.ndarray) -> None:
    """Atomically: an interrupted write leaves the old cache, or none."""
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez_compressed(tmp, key=np.array(key), probs=probs)
        os.replace(tmp, path)
    except OSError as exc:
        raise FlickerError(f"cannot write the cache {path}: {exc.strerror or exc}") from None


def run(args) -> int:
    from fer_pi.vision.classify import Classifier
    from fer_pi.vision.modelfile import ModelError, resolve_model

    if args.faces < 2 or args.frames < 2:
        raise FlickerError("--faces and --frames must be at least 2")
    try:
        model = resolve_model(args.model)
        clf = Classifier(model, threads=args.threads, flip_tta=not args.no_flip_tta)
    except ModelError as exc:
        raise FlickerError(str(exc)) from None
    split = load_split(args.data, "PublicTest")
    idx = np.sort(stratified_subset(split.y, min(args.faces, len(split)), args.seed))
    key = json.dumps({"model_sha256": file_sha256(model), "temperature": clf.temperature,
                      "data_sha256": file_sha256(split.path), "faces": len(idx),
                      "frames": args.frames, "jitter": args.jitter, "noise": args.noise,
                      "detect_every": args.detect_every, "flip_tta": clf.flip_tta,
                      "seed": args.seed, "face": clf.info.face.to_metadata()},
                     sort_keys=True)
    probs = load_cache(Path(args.cache), key) if args.cache else None
    if probs is None:
        probs = classify_faces(clf, split.x[idx], args)
        if args.cache:
            save_cache(Path(args.cache), key, probs)
    y = split.y[idx].astype(int)
    rng = np.random.default_rng(args.seed + 1)
    partner = swap_partner(probs.mean(1).argmax(1), rng.permutation(len(idx)))
    rows = []
    for name, s in settings_grid(SmoothSettings()):
        rows.append({"setting": name, **asdict(s), **measure(probs, y, s, args.fps, partner)})
    result = {"model": clf.info.name, "model_file": model.name,
              "model_sha256": file_sha256(model), "flip_tta": clf.flip_tta,
              "split": "PublicTest (validation)", "faces": len(idx), "frames": args.frames,
              "fps": args.fps, "detect_every": args.detect_every, "jitter": args.jitter,
              "noise": args.noise, "seed": args.seed,
              "rows": rows}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(table(result))
    return 0


def table(result: dict) -> str:
    head = (f"{result['model']}, flip TTA {'on' if result['flip_tta'] else 'off'}, "
            f"{result['faces']} PublicTest (validation) faces x {result['frames']} frames "
            f"at {result['fps']:g} FPS, detection every {result['detect_every']} frames, jitter "
            f"{result['jitter']:g}, noise {result['noise']:g}; changes counted after the "
            "first second")
    lines = [head, "| setting | changes/min (still face) | still faces with a change | "
             "shown right | uncertain | frames to follow (p50 / p90) | never followed |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        follow = (f"{r['follow_frames_p50']:.0f} / {r['follow_frames_p90']:.0f}"
                  if r["follow_frames_p50"] is not None else "-")
        never = f"{100 * r['never_followed']:.1f} %" if r["never_followed"] is not None else "-"
        lines.append(f"| {r['setting']} | {r['changes_per_min']:.1f} | "
                     f"{100 * r['still_faces_with_a_change']:.1f} % | "
                     f"{100 * r['accuracy_shown']:.1f} % | {100 * r['uncertain_share']:.1f} % | "
                     f"{follow} | {never} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fer_tools.flicker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a shipped model's name or a .tflite path "
                   "(default: the default model)")
    p.add_argument("--data", default=None, help="FER2013 folder (default: $FER_DATA or "
                   "../shared/data/fer2013)")
    p.add_argument("--faces", type=int, default=600, help="PublicTest faces, stratified")
    p.add_argument("--frames", type=int, default=90, help="frames each face is held still")
    p.add_argument("--fps", type=float, default=30.0, help="the board's frame rate")
    p.add_argument("--jitter", type=float, default=0.03,
                   help="detection jitter: box centre and size, as a fraction of its side")
    p.add_argument("--detect-every", type=int, default=2, help="new box jitter every N "
                   "frames (track.detect_every; the tracker holds a still face's box between)")
    p.add_argument("--noise", type=float, default=2.0, help="sensor noise, grey levels (sd)")
    p.add_argument("--no-flip-tta", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="", metavar="FILE.npz", help="keep the probabilities "
                   "here, and reuse them when model, data and settings match")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return main_wrapper("flicker", parse_args, run, (FlickerError, DataError), argv)


if __name__ == "__main__":
    sys.exit(main())

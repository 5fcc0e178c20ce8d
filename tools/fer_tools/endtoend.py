"""fer-eval --end-to-end: accuracy where users meet it, through the device's own pipeline.

    fer-eval --end-to-end ../shared/data/realfaces/MANIFEST.tsv [--model seed] [fer-pi flags]
    fer-eval --end-to-end FOLDER  (a folder per label: FOLDER/happy/*.jpg, FOLDER/sad/*.mp4)

Whole labelled pictures and clips go through the objects fer-pi itself builds from its
settings (``fer_pi.app.assemble.build``: Haar detector, tracker, the model's face crop,
classifier, smoother), with every fer-pi setting available as on the device (--config,
--detect-width, --margin ...). A picture is one frame: its largest face is scored (a
picture with no face found counts as wrong). A clip runs through the device's own loop
with tracking and smoothing; its label is the one shown most often on its largest face.

Reports faces found, accuracy (of all pictures, and of those with a face), per-class
recall, macro F1, a confusion matrix (JSON and PNG when matplotlib is there); for clips,
the clip's label, frame accuracy of the raw and the shown labels, and shown-label changes
per 100 frames. ``--compare-fer`` scores the ``fer`` package (pip install fer
'setuptools<81') on the same files the same way (its own Haar detector, no smoothing).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fer_pi.core.labels import LABELS, UNCERTAIN
from fer_tools.cliutil import has_module, main_wrapper
from fer_tools.metrics import report
from fer_tools.portable import portable_path

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
FILE_COLUMNS = ("local_file", "file", "path")
GROUP_COLUMNS = ("performer", "person", "group")


class EndToEndError(Exception):
    """A labelled set that cannot be used; the message names the file, folder or label."""


@dataclass(frozen=True)
class Item:
    path: Path
    label: int
    group: str = ""

    @property
    def is_clip(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


def _media(path: Path) -> bool:
    from fer_pi.sources import IMAGE_SUFFIXES

    return path.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES


def _label_index(name: str, where: str) -> int:
    if name not in LABELS:
        raise EndToEndError(f"unknown label {name!r} ({where}); labels: {', '.join(LABELS)}")
    return LABELS.index(name)


def read_set(path: Path) -> list[Item]:
    """A manifest (TSV or CSV with a file column and a label column, paths relative to it)
    or a folder with one subfolder per label."""
    if path.is_file():
        return read_manifest(path)
    if not path.is_dir():
        raise EndToEndError(f"labelled set not found: {path}")
    items = []
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    for sub in subdirs:
        label = _label_index(sub.name, f"folder {sub}")
        items += [Item(f, label) for f in sorted(sub.iterdir()) if f.is_file() and _media(f)]
    if not items:
        raise EndToEndError(f"no labelled pictures or clips in {path} (expected a folder per "
                            f"label: {', '.join(LABELS)})")
    return items


def read_manifest(path: Path) -> list[Item]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EndToEndError(f"manifest unreadable: {path} ({exc})") from None
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") or "\t" in text[:1000] else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    if not rows:
        raise EndToEndError(f"manifest has no rows: {path}")
    columns = set(rows[0])
    file_col = next((c for c in FILE_COLUMNS if c in columns), None)
    if file_col is None or "label" not in columns:
        raise EndToEndError(f"manifest {path} needs a 'label' column and one of "
                            f"{', '.join(FILE_COLUMNS)}; it has {', '.join(sorted(columns))}")
    group_col = next((c for c in GROUP_COLUMNS if c in columns), None)
    items = []
    for n, row in enumerate(rows, start=2):
        file = path.parent / (row[file_col] or "")
        label = _label_index((row["label"] or "").strip(), f"{path} line {n}")
        if not row[file_col] or not file.is_file():
            raise EndToEndError(f"manifest {path} line {n} names a missing file: {file}")
        items.append(Item(file, label, (row.get(group_col) or "") if group_col else ""))
    return items


class DeviceScorer:
    """The device's own objects, built from fer-pi settings as fer-pi builds them."""

    def __init__(self, cfg):
        from fer_pi.app.assemble import build, face_prep
        from fer_pi.vision.classify import Classifier
        from fer_pi.vision.modelfile import resolve_model

        self.cfg = cfg
        self.classifier = Classifier(resolve_model(cfg.model.path), threads=cfg.model.threads,
                                     flip_tta=cfg.model.flip_tta)
        # a picture is one frame: nothing to track or smooth (fer-pi --images does the same)
        still = replace(cfg, track=replace(cfg.track, enabled=False))
        self.still = build(still, self.classifier)
        self.prep = face_prep(cfg, self.classifier)
        self._build = build
        self.name = self.classifier.info.name

    def picture(self, image: np.ndarray, name: str) -> tuple[np.ndarray | None, int]:
        """The largest face's probabilities (None: no face), and how many faces were found."""
        from fer_pi.core.records import Frame

        result = self.still.process(Frame(0, 0.0, image, name))
        face = largest(result.faces)
        return (np.asarray(face.prediction.probs) if face else None), len(result.faces)

    def clip(self, path: Path) -> list[tuple[str, str] | None]:
        """Per frame, the largest face's (raw label, shown label), or None without a face."""
        from fer_pi.app.loop import run
        from fer_pi.sources import make_source

        out: list[tuple[str, str] | None] = []

        def collect(result) -> None:
            face = largest(result.faces)
            out.append((face.prediction.label, face.shown_label) if face else None)

        source = make_source(video=str(path))
        source.open()
        try:
            run(source, self._build(self.cfg, self.classifier), sinks=[collect])
        finally:
            source.close()
        return out


class FerPackageScorer:
    """The ``fer`` package (Justin Shenk's, 2019 mini-Xception) on the same files."""

    name = "fer package"

    def __init__(self):
        try:
            from fer.fer import FER
        except ImportError as exc:
            raise EndToEndError(f"--compare-fer needs the fer package: pip install fer "
                                f"'setuptools<81' ({exc})") from None
        self.detector = FER()

    def _largest(self, image: np.ndarray) -> tuple[np.ndarray | None, int]:
        if image.ndim == 2:
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        faces = self.detector.detect_emotions(image[:, :, :3])
        if not faces:
            return None, 0
        best = max(faces, key=lambda f: f["box"][2] * f["box"][3])
        return np.array([best["emotions"].get(k, 0.0) for k in LABELS], float), len(faces)

    def picture(self, image: np.ndarray, name: str) -> tuple[np.ndarray | None, int]:
        return self._largest(image)

    def clip(self, path: Path) -> list[tuple[str, str] | None]:
        from fer_pi.sources import make_source

        source = make_source(video=str(path))
        source.open()
        out: list[tuple[str, str] | None] = []
        try:
            while (frame := source.read()) is not None:
                probs, _ = self._largest(frame.image)
                label = LABELS[int(np.argmax(probs))] if probs is not None else None
                out.append((label, label) if label else None)  # fer shows each frame's own
        finally:
            source.close()
        return out


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """A picture turned by ``degrees`` (counter-clockwise on the screen) about its centre, on
    a canvas a quarter larger on each side filled by replicating its border, so that no
    corner of the face is cut off (0 degrees: the same canvas, unturned, so every angle is
    scored on the same framing)."""
    import cv2

    h, w = image.shape[:2]
    pad = max(h, w) // 4
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    if not degrees:
        return big
    bh, bw = big.shape[:2]
    m = cv2.getRotationMatrix2D(((bw - 1) / 2.0, (bh - 1) / 2.0), degrees, 1.0)
    return cv2.warpAffine(big, m, (bw, bh), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


class TurnedScorer:
    """Another scorer's pictures, each turned by an angle first: heads as people tilt them."""

    def __init__(self, inner, degrees: float):
        self.inner, self.degrees = inner, degrees
        self.name = f"{inner.name} turned {degrees:g}"

    def picture(self, image: np.ndarray, name: str) -> tuple[np.ndarray | None, int]:
        return self.inner.picture(turned(image, self.degrees), name)

    def clip(self, path: Path):
        raise EndToEndError(f"--turn scores pictures only, not clips: {path}")


def parse_turns(text: str) -> list[float]:
    try:
        turns = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise EndToEndError(f"--turn: {text!r} is not a list of degrees like 0,15,25,35") from None
    if not turns or any(abs(t) > 90 for t in turns):
        raise EndToEndError(f"--turn: {text!r}: give degrees between -90 and 90")
    return turns


def largest(faces):
    return max(faces, key=lambda f: f.box.w * f.box.h, default=None)


def score(scorer, items: list[Item], quiet: bool = False) -> dict:
    """Every item through one scorer; unreadable files are skipped and counted."""
    from fer_pi.sources import read_image

    pictures = [it for it in items if not it.is_clip]
    clips = [it for it in items if it.is_clip]
    y_true, y_pred, groups = [], [], []
    found = unreadable = multi = 0
    skipped: list[str] = []
    t0 = time.monotonic()
    for k, it in enumerate(pictures, start=1):
        image = read_image(it.path)
        if image is None:
            unreadable += 1
            skipped.append(str(it.path))
        else:
            probs, n = scorer.picture(image, str(it.path))
            found += probs is not None
            multi += n > 1
            y_true.append(it.label)
            # a picture with no face found is a wrong answer: the user sees no label
            y_pred.append(int(np.argmax(probs)) if probs is not None else -1)
            groups.append(it.group)
        if not quiet and (k % 50 == 0 or k == len(pictures)):
            print(f"[{k}/{len(pictures)}] pictures ({scorer.name}), "
                  f"{time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    out: dict = {}
    if pictures:
        yt, yp = np.array(y_true, int), np.array(y_pred, int)
        has = yp >= 0
        rep = report(yt[has], yp[has], LABELS) if has.any() else report(
            np.zeros(0, int), np.zeros(0, int), LABELS)
        # recall and F1 over every picture of a class (a missed face counts against it)
        rep_all = _report_with_misses(yt, yp)
        out["pictures"] = {
            "total": len(pictures), "scored": int(len(yt)), "unreadable": unreadable,
            "faces_found": found, "with_several_faces": multi,
            "accuracy": rep_all["accuracy"], "accuracy_ci95": rep_all["accuracy_ci95"],
            "accuracy_of_found": rep["accuracy"], "macro_f1": rep_all["macro_f1"],
            "recall": {k: v["recall"] for k, v in rep_all["per_class"].items()},
            "per_class": rep_all["per_class"], "confusion": rep["confusion"],
            "confusion_labels": list(LABELS), "skipped": skipped[:20],
        }
        if any(groups):
            by = {}
            for g in sorted(set(groups)):
                m = np.array([x == g for x in groups])
                by[g] = round(float((yt[m] == yp[m]).mean()), 4)
            out["pictures"]["accuracy_by_group"] = by
    if clips:
        out["clips"] = _score_clips(scorer, clips, quiet)
    return out


def _report_with_misses(yt: np.ndarray, yp: np.ndarray) -> dict:
    """metrics.report with 'no face' as an eighth column that is never right."""
    labels = (*LABELS, "no face")
    rep = report(yt, np.where(yp < 0, len(LABELS), yp), labels)
    rep["per_class"].pop("no face")
    f1 = [c["f1"] for c in rep["per_class"].values()]
    rep["macro_f1"] = float(np.mean(f1))
    return rep


def _score_clips(scorer, clips: list[Item], quiet: bool) -> dict:
    from fer_pi.sources import SourceError

    rows, unreadable = [], 0
    for k, it in enumerate(clips, start=1):
        try:
            frames = scorer.clip(it.path)
        except SourceError as exc:
            print(f"skipping clip: {exc}", file=sys.stderr)
            unreadable += 1
            continue
        truth = LABELS[it.label]
        seen = [f for f in frames if f is not None]
        shown = [s for _, s in seen]
        counts = Counter(s for s in shown if s != UNCERTAIN)
        clip_label = counts.most_common(1)[0][0] if counts else (UNCERTAIN if shown else None)
        rows.append({
            "file": str(it.path), "label": truth, "frames": len(frames),
            "frames_with_face": len(seen), "clip_label": clip_label,
            "raw_right": sum(r == truth for r, _ in seen),
            "shown_right": sum(s == truth for s in shown),
            "changes": sum(a != b for a, b in zip(shown, shown[1:], strict=False)),
        })
        if not quiet:
            print(f"[{k}/{len(clips)}] clips ({scorer.name}): {it.path.name} {truth} -> "
                  f"{clip_label}", file=sys.stderr, flush=True)
    seen = sum(r["frames_with_face"] for r in rows)
    return {
        "total": len(clips), "scored": len(rows), "unreadable": unreadable,
        "clips_right": sum(r["clip_label"] == r["label"] for r in rows),
        "clip_accuracy": (sum(r["clip_label"] == r["label"] for r in rows) / len(rows)
                          if rows else 0.0),
        "frames": sum(r["frames"] for r in rows), "frames_with_face": seen,
        "raw_frame_accuracy": sum(r["raw_right"] for r in rows) / seen if seen else 0.0,
        "shown_frame_accuracy": sum(r["shown_right"] for r in rows) / seen if seen else 0.0,
        "changes_per_100_frames": 100 * sum(r["changes"] for r in rows) / seen if seen else 0.0,
        "per_clip": rows,
    }


def build_parser() -> argparse.ArgumentParser:
    from fer_pi.app import config as cfgmod

    p = argparse.ArgumentParser(prog="fer-eval --end-to-end", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("set", help="a manifest (.tsv/.csv: a file column, a label column) or a "
                   "folder with a subfolder per label")
    p.add_argument("--out", default=None, help="folder for the JSON and PNG (default: no files)")
    p.add_argument("--name", default=None, help="the set's name in the output files (default: "
                   "the folder's name)")
    p.add_argument("--compare-fer", action="store_true", help="also score the fer package")
    p.add_argument("--performers", default="", metavar="16-30", help="a manifest's rows of "
                   "these performers only ('16-30' or '01,03'): the people a model trained on "
                   "part of the set did not see")
    p.add_argument("--turn", default="", metavar="0,15,25,35", help="score the pictures turned "
                   "by each of these angles in degrees (a padded canvas, heads as people tilt "
                   "them): accuracy per angle")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--config", metavar="FILE", help="fer-pi TOML settings file")
    cfgmod.add_arguments(p)  # every fer-pi setting, as on the device
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def run(args) -> int:
    from fer_pi.app import config as cfgmod
    from fer_pi.app.cli import resolve_config
    from fer_pi.vision.modelfile import ModelError

    try:
        cfg = resolve_config(args)
    except cfgmod.ConfigError as exc:
        raise EndToEndError(f"config: {exc}") from None
    path = Path(args.set)
    items = read_set(path)
    subset = ""
    if args.performers:
        from fer_tools.data import DataError
        from fer_tools.realfaces import parse_performers

        try:
            keep = parse_performers(args.performers)
        except DataError as exc:
            raise EndToEndError(str(exc)) from None
        items = [it for it in items if it.group in keep]
        if not items:
            raise EndToEndError(f"no pictures of performers {args.performers} in {path}")
        subset = f"performers {args.performers}"
    try:
        device = DeviceScorer(cfg)
    except ModelError as exc:
        raise EndToEndError(str(exc)) from None
    scorers = [device] + ([FerPackageScorer()] if args.compare_fer else [])
    if args.turn:
        if any(it.is_clip for it in items):
            raise EndToEndError("--turn scores pictures only: the set has clips")
        scorers = [TurnedScorer(sc, t) for sc in scorers for t in parse_turns(args.turn)]
    set_name = args.name or (path.parent.name if path.is_file() else path.name)
    from fer_tools.data import file_sha256

    result = {"set": portable_path(str(path)), "set_name": set_name, "subset": subset,
              "items": len(items), "model": device.name,
              "model_file": portable_path(str(device.classifier.info.path)),
              "model_sha256": file_sha256(device.classifier.info.path),
              "flip_tta": cfg.model.flip_tta, "face_prep": device.prep.to_metadata(),
              "detect": {k: getattr(cfg.detect, k) for k in (
                  "detector", "scale_factor", "min_neighbors", "min_size", "detect_width",
                  "yunet_score", "verify")},
              "turns": parse_turns(args.turn) if args.turn else [],
              "scores": {}}
    for scorer in scorers:
        result["scores"][scorer.name] = score(scorer, items, args.quiet)
    print(summary(result))
    if args.out:
        write_outputs(result, Path(args.out))
    return 0


def summary(result: dict) -> str:
    lines = [f"{result['set_name']}: {result['items']} files, end to end through the device "
             f"pipeline (model {result['model']}, crop {result['face_prep']})"]
    for name, s in result["scores"].items():
        if "pictures" in s:
            p = s["pictures"]
            rec = ", ".join(f"{k} {v:.2f}" for k, v in p["recall"].items())
            lines.append(f"  {name}: pictures {p['scored']} (unreadable {p['unreadable']}), "
                         f"faces found {p['faces_found']}; accuracy {100 * p['accuracy']:.1f} % "
                         f"({100 * p['accuracy_of_found']:.1f} % of found), macro F1 "
                         f"{p['macro_f1']:.3f}")
            lines.append(f"    recall: {rec}")
        if "clips" in s:
            c = s["clips"]
            lines.append(f"  {name}: clips {c['scored']} (unreadable {c['unreadable']}), "
                         f"clip label right {c['clips_right']}/{c['scored']}; frames right: "
                         f"raw {100 * c['raw_frame_accuracy']:.1f} %, shown "
                         f"{100 * c['shown_frame_accuracy']:.1f} %; shown-label changes "
                         f"{c['changes_per_100_frames']:.1f} per 100 frames")
    return "\n".join(lines)


def write_outputs(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    part = "_" + result["subset"].split()[-1] if result.get("subset") else ""
    if result.get("turns"):
        part += f"_{result['detect']['detector']}_turned"
    stem = f"endtoend_{result['model']}_{result['set_name']}{part}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    p = result["scores"].get(result["model"], {}).get("pictures")
    if p is None:
        return
    if not has_module("matplotlib"):
        print("no confusion PNG: matplotlib is not installed (pip install 'fer-pi[train]')",
              file=sys.stderr)
        return
    from fer_tools.metrics import plot_confusion

    plot_confusion({"confusion": p["confusion"], "labels": list(LABELS)},
                   out / f"confusion_{stem}.png",
                   f"{result['model']} end to end on {result['set_name']}: "
                   f"{100 * p['accuracy']:.1f} %")


def main(argv=None) -> int:
    return main_wrapper("fer-eval --end-to-end", parse_args, run, (EndToEndError,), argv)


if __name__ == "__main__":
    sys.exit(main())

"""Expression onsets: a labelled video development set, and the smoother's study on it.

    python -m fer_tools.onsets [--performers 16-30] [--fps 10,15,30,60] [--cache runs/onsets]

No labelled footage of real people is in the data folder, so this makes the nearest thing
from the real-face set: for each performer, a neutral photo and an expression photo of the
same person (the same session where the set has one), as an expression arrives and goes:
the neutral face held ``PRE_S``, a blend to the expression over ``BLEND_S``, the expression
held ``HOLD_S``, a blend back and the neutral face again. Each photo is placed in a 640×480
frame with head motion (drift, a slow roll of a few degrees, a breathing scale), sensor
noise and a little blur, at each frame rate asked for; the truth of a frame is the
expression from the blend's midpoint on, neutral before and after. Only performers the
models never trained on (16-30: 01-15 were used in training).

Every frame goes through the device's own pipeline (Haar, the finder's confirmation, the
model's crop, the classifier with flip TTA) with smoothing off, once (cached); then each
smoother setting replays those probabilities at the frames' own times. Reported per
setting and frame rate: frames whose shown label is right (all frames, those before the
first label too), the raw label's, clip label (the most shown during the held
expression), label changes per 100 frames and per minute on a held expression, time from
the truth's switch to the board showing it (p50/p90), "uncertain" (how often shown, and
how often right to be: the raw label was wrong then), and the accuracy of the average's
label against its lead over the next label (the curve that places "uncertain").

What it is not: real video. A blend of two photos is a smooth, complete expression; real
onsets are partial, with speech and blinks. Tune on it; the held-back clips check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from fer_pi.core.labels import LABELS, UNCERTAIN
from fer_pi.vision.schedule import ClassifySchedule
from fer_pi.vision.smooth import Smoother, SmoothSettings, lead
from fer_tools.cliutil import main_wrapper
from fer_tools.data import DataError, file_sha256

PRE_S, BLEND_S, HOLD_S, POST_S = 1.0, 0.3, 2.0, 0.8
WIDTH, HEIGHT = 640, 480
RENDER_VERSION = 1  # bump when the rendering changes: the cache keys on it
EXPRESSIONS = tuple(x for x in LABELS if x != "neutral")


class OnsetError(Exception):
    pass


@dataclass(frozen=True)
class Onset:
    performer: str
    neutral: str  # the photos' paths, as the manifest names them under the set's folder
    expression: str
    label: str
    seed: int


def duration_s() -> float:
    return PRE_S + 2 * BLEND_S + HOLD_S + POST_S


def mix(t: float) -> float:
    """The expression's weight in the blend at time t (0 neutral .. 1 the expression)."""
    up, top = PRE_S, PRE_S + BLEND_S
    down, end = top + HOLD_S, top + HOLD_S + BLEND_S
    if t < up or t >= end:
        return 0.0
    if t < top:
        return (t - up) / BLEND_S
    if t < down:
        return 1.0
    return 1.0 - (t - down) / BLEND_S


def switch_times() -> tuple[float, float]:
    """When the truth becomes the expression, and when it is neutral again."""
    return PRE_S + BLEND_S / 2, PRE_S + BLEND_S + HOLD_S + BLEND_S / 2


def truth(t: float, label: str) -> str:
    on, off = switch_times()
    return label if on <= t < off else "neutral"


def choose(rows: list[dict], performers: set[str], per_class: int, seed: int) -> list[Onset]:
    """Per performer, up to ``per_class`` expression photos per label, each with a neutral
    photo of the same performer (of the same session, the file name's 3rd-4th characters,
    where there is one)."""
    rng = np.random.default_rng(seed)
    out = []
    for perf in sorted(performers):
        mine = [r for r in rows if r["performer"] == perf]
        neutral = sorted(r["local_file"] for r in mine if r["label"] == "neutral")
        if not neutral:
            continue
        for label in EXPRESSIONS:
            files = sorted(r["local_file"] for r in mine if r["label"] == label)
            for f in rng.permutation(files)[:per_class] if files else []:
                session = Path(f).name[2:4]
                same = [n for n in neutral if Path(n).name[2:4] == session] or neutral
                out.append(Onset(perf, str(same[int(rng.integers(len(same)))]), str(f), label,
                                 int(rng.integers(1 << 30))))
    return out


def motion(seed: int):
    """A head's path: centre, side and roll as functions of time (the same at any rate)."""
    rng = np.random.default_rng(seed)
    side = rng.uniform(220, 320)  # the photo's side: its face about 130-190 px
    cx, cy = rng.uniform(0.35, 0.65) * WIDTH, rng.uniform(0.42, 0.58) * HEIGHT
    ax, ay = rng.uniform(10, 35), rng.uniform(4, 14)
    fx, fy, fr, fs = rng.uniform(0.15, 0.45, 4)
    px, py, pr, ps = rng.uniform(0, 2 * np.pi, 4)
    roll = rng.uniform(0, 4)

    def at(t: float) -> tuple[float, float, float, float]:
        return (cx + ax * np.sin(2 * np.pi * fx * t + px),
                cy + ay * np.sin(2 * np.pi * fy * t + py),
                side * (1 + 0.03 * np.sin(2 * np.pi * fs * t + ps)),
                roll * np.sin(2 * np.pi * fr * t + pr))

    return at


def backdrop() -> np.ndarray:
    gx = np.linspace(70, 140, WIDTH, dtype=np.float32)[None, :]
    gy = np.linspace(0, 30, HEIGHT, dtype=np.float32)[:, None]
    g = (gx + gy).astype(np.uint8)
    return cv2.merge([g, g, g])


def render(onset: Onset, folder: Path, fps: float) -> Iterator[tuple[float, np.ndarray, str]]:
    """(time, frame, truth) of one onset at ``fps``."""
    a = cv2.imread(str(folder / onset.neutral), cv2.IMREAD_COLOR)
    b = cv2.imread(str(folder / onset.expression), cv2.IMREAD_COLOR)
    if a is None or b is None:
        raise OnsetError(f"cannot read {onset.neutral} or {onset.expression} in {folder}")
    if b.shape != a.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    path, back = motion(onset.seed), backdrop()
    n = int(round(duration_s() * fps))
    for i in range(n):
        t = i / fps
        w = mix(t)
        face = cv2.addWeighted(a, 1.0 - w, b, w, 0.0)
        x, y, side, roll = path(t)
        s = side / a.shape[0]
        m = cv2.getRotationMatrix2D((a.shape[1] / 2, a.shape[0] / 2), roll, s)
        m[0, 2] += x - a.shape[1] / 2
        m[1, 2] += y - a.shape[0] / 2
        frame = cv2.warpAffine(face, m, (WIDTH, HEIGHT), dst=back.copy(),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
        # sensor noise and a little defocus, fresh every frame (a frame's own, at any rate)
        rng = np.random.default_rng([onset.seed, int(round(t * 1000))])
        sigma = 0.4 + 0.4 * (1 + np.sin(2 * np.pi * 0.3 * t + onset.seed % 7))
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
        frame = np.clip(frame + rng.normal(0, 3.0, frame.shape), 0, 255).astype(np.uint8)
        yield t, frame, truth(t, onset.label)


def collecting(cfg):
    """The settings the probabilities are collected with: smoothing off, and every face read
    on every frame (classify.max_hz 0), so that the replay can apply any rate itself;
    collected at the default 15 Hz, a replay at 10 Hz would thin readings already thinned."""
    return replace(cfg, smooth=replace(cfg.smooth, enabled=False),
                   classify=replace(cfg.classify, max_hz=0.0))


def pipeline_digest(cfg, code: Path | None = None) -> str:
    """What else decides the per-frame probabilities: the finding, tracking and crop
    settings, and the vision code itself (a change to how faces are found changes the
    boxes, so the crops, so the probabilities, with no setting changed)."""
    if code is None:
        import fer_pi.vision as vision

        code = Path(vision.__file__).parent
    h = hashlib.sha256(json.dumps({k: asdict(getattr(cfg, k)) for k in
                                   ("detect", "track", "classify", "model")},
                                  sort_keys=True, default=str).encode())
    for src in sorted(code.glob("*.py")):
        h.update(src.name.encode() + src.read_bytes())
    return h.hexdigest()


def classify(onsets: list[Onset], folder: Path, fps: float, cfg, classifier) -> np.ndarray:
    """(onsets, frames, 7) raw probabilities of the largest face shown (NaN: none shown),
    through the device's pipeline with smoothing off."""
    from fer_pi.app.assemble import build
    from fer_pi.core.records import Frame

    cfg = collecting(cfg)
    n = int(round(duration_s() * fps))
    out = np.full((len(onsets), n, len(LABELS)), np.nan, np.float32)
    for k, onset in enumerate(onsets):
        pipe = build(cfg, classifier)
        try:
            for i, (t, frame, _truth) in enumerate(render(onset, folder, fps)):
                r = pipe.process(Frame(i, t, frame, onset.expression))
                if r.faces:
                    f = max(r.faces, key=lambda f: f.box.w * f.box.h)
                    out[k, i] = f.prediction.probs
        finally:
            pipe.close()
        if (k + 1) % 10 == 0 or k + 1 == len(onsets):
            print(f"[{fps:g} FPS] {k + 1}/{len(onsets)} onsets classified", file=sys.stderr,
                  flush=True)
    return out


def smoothed(probs: np.ndarray, fps: float, settings: SmoothSettings,
             max_hz: float = 0.0) -> list:
    """The smoother frame by frame for one onset: its Smoothed (label, average), or None
    where no face was shown (the track and its average are kept, as the tracker keeps
    them). ``max_hz``: the face is classified only when the device's schedule says it is
    due (classify.max_hz), its last reading carried in between, as the pipeline does."""
    sm = Smoother(LABELS, settings)
    schedule = ClassifySchedule(max_hz)
    out = []
    for i, p in enumerate(probs):
        if np.isnan(p[0]):
            out.append(None)
            continue
        t = i / fps
        if schedule.due([0], t)[0] or sm.current(0, t) is None:
            schedule.read(0, t)
            out.append(sm.update(0, p, t))
        else:
            out.append(sm.current(0, t))
    return out


def replay(probs: np.ndarray, fps: float, settings: SmoothSettings,
           max_hz: float = 0.0) -> list[str | None]:
    """What the board shows frame by frame for one onset (None: no face shown)."""
    return [None if s is None else s.shown for s in smoothed(probs, fps, settings, max_hz)]


def averaged(probs: np.ndarray, fps: float, settings: SmoothSettings) -> np.ndarray:
    """The smoother's running average frame by frame (NaN where no face)."""
    out = np.full_like(probs, np.nan)
    for i, s in enumerate(smoothed(probs, fps, settings)):
        if s is not None:
            out[i] = s.probs
    return out


def most_shown(labels: list[str]) -> str:
    """The label seen most; a tie goes to the one seen first (never to a set's order,
    which changes with Python's string hashing from run to run)."""
    return Counter(labels).most_common(1)[0][0]


def _changes(seq: list) -> int:
    return sum(a != b for a, b in zip(seq, seq[1:], strict=False))


def measure(onsets: list[Onset], probs: np.ndarray, fps: float, settings: SmoothSettings,
            max_hz: float = 0.0) -> dict:
    """One setting's figures at one frame rate (``probs``: the onsets' raw probabilities;
    ``max_hz``: how often the face is classified, 0 every frame)."""
    n = probs.shape[1]
    times = np.arange(n) / fps
    on, off = switch_times()
    right = raw_right = frames = 0
    clip_right = raw_clip_right = 0
    held_changes, held_s = 0, 0.0
    changes = 0
    latency: list[float] = []
    recognized: list[float] = []  # onsets whose expression the raw label names (its plurality)
    unsure = unsure_wise = 0
    for onset, p in zip(onsets, probs, strict=True):
        truths = [truth(t, onset.label) for t in times]
        shown = replay(p, fps, settings, max_hz)
        raw = [None if np.isnan(x[0]) else LABELS[int(np.argmax(x))] for x in p]
        frames += n
        right += sum(s == g for s, g in zip(shown, truths, strict=True))
        raw_right += sum(r == g for r, g in zip(raw, truths, strict=True))
        hold = [i for i, t in enumerate(times) if on <= t < off]
        named = [shown[i] for i in hold if shown[i] not in (None, UNCERTAIN)]
        clip_right += bool(named) and most_shown(named) == onset.label
        raw_named = [raw[i] for i in hold if raw[i] is not None]
        knows = bool(raw_named) and most_shown(raw_named) == onset.label
        raw_clip_right += knows
        changes += _changes([s for s in shown if s is not None])
        first = next((times[i] - on for i in hold if shown[i] == onset.label), None)
        latency.append(np.inf if first is None else float(first))
        if knows:
            recognized.append(latency[-1])
        steady = [shown[i] for i in hold if times[i] >= on + 0.5]  # the expression held
        held_changes += _changes(steady)
        held_s += len(steady) / fps
        for s, r, g in zip(shown, raw, truths, strict=True):
            if s == UNCERTAIN:
                unsure += 1
                unsure_wise += r != g
    lat = np.asarray(latency)
    return {
        "frames_right_shown": right / frames,
        "frames_right_raw": raw_right / frames,
        "clips_right_shown": clip_right / len(onsets),
        "clips_right_raw": raw_clip_right / len(onsets),
        "changes_per_100_frames": 100.0 * changes / frames,
        "changes_per_min_held": 60.0 * held_changes / held_s if held_s else 0.0,
        # 'higher': a face never shown its label counts as infinitely late, not as NaN
        "onset_to_shown_p50_s": float(np.quantile(lat, 0.5, method="higher")),
        "onset_to_shown_p90_s": float(np.quantile(lat, 0.9, method="higher")),
        "never_shown": float(np.mean(~np.isfinite(lat))),
        # the smoother's own delay: onsets the model recognises (the raw label's plurality
        # over the held expression is right), where the median is not the model's failure
        "recognized_onset_to_shown_p50_s": float(np.quantile(recognized, 0.5, method="higher"))
        if recognized else None,
        "recognized_onset_to_shown_p90_s": float(np.quantile(recognized, 0.9, method="higher"))
        if recognized else None,
        "uncertain_share": unsure / frames,
        "uncertain_right_to_be": unsure_wise / unsure if unsure else None,
    }


def lead_curve(onsets: list[Onset], probs: np.ndarray, fps: float, settings: SmoothSettings,
               steps: tuple[float, ...] = tuple(np.round(np.arange(0, 0.41, 0.025), 3))
               ) -> list[dict]:
    """Accuracy of the average's label against its lead over the next label: for each
    threshold, the share of face-frames at or above it and their accuracy, and the accuracy
    of those below (what 'uncertain' would hide)."""
    times = np.arange(probs.shape[1]) / fps
    leads, ok = [], []
    for onset, p in zip(onsets, probs, strict=True):
        avg = averaged(p, fps, settings)
        for t, a in zip(times, avg, strict=True):
            if not np.isnan(a[0]):
                leads.append(lead(a))
                ok.append(LABELS[int(np.argmax(a))] == truth(t, onset.label))
    leads_a, ok_a = np.asarray(leads), np.asarray(ok)
    rows = []
    for th in steps:
        above = leads_a >= th
        rows.append({"lead": float(th), "coverage": float(above.mean()),
                     "accuracy_above": float(ok_a[above].mean()) if above.any() else None,
                     "accuracy_below": float(ok_a[~above].mean()) if (~above).any() else None})
    return rows


def settings_grid(base: SmoothSettings) -> list[tuple[str, SmoothSettings]]:
    """Raw labels, the defaults, and each knob moved alone around the defaults."""
    grid = [("raw (--no-smooth)", SmoothSettings.off()), ("defaults", base)]
    moves = {"tau_s": (0.0, 0.1, 0.3, 0.5), "margin": (0.0, 0.1, 0.2),
             "hold_s": (0.0, 0.2, 0.3), "uncertain_lead": (0.0, 0.1, 0.15),
             "uncertain_band": (0.0, 0.06)}
    for knob, values in moves.items():
        for v in values:
            if v != getattr(base, knob):
                grid.append((f"{knob} = {v}", replace(base, **{knob: v})))
    return grid


def cache_key(onsets: list[Onset], fps: float, model: Path, classifier, folder: Path,
              cfg) -> str:
    manifest = folder / "MANIFEST.tsv"
    return json.dumps({"render": RENDER_VERSION, "fps": fps, "model": file_sha256(model),
                       "pipeline": pipeline_digest(collecting(cfg)),
                       "flip_tta": classifier.flip_tta, "temperature": classifier.temperature,
                       "manifest": file_sha256(manifest) if manifest.is_file() else "",
                       "onsets": hashlib.sha256(json.dumps([asdict(o) for o in onsets]
                                                           ).encode()).hexdigest()},
                      sort_keys=True)


def probabilities(onsets, folder, fps, cfg, classifier, model, cache: Path | None):
    key = cache_key(onsets, fps, model, classifier, folder, cfg)
    path = cache / f"onsets_{fps:g}fps.npz" if cache else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                if str(z["key"]) == key:
                    return z["probs"]
        except (OSError, ValueError, KeyError):
            pass
    probs = classify(onsets, folder, fps, cfg, classifier)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, key=np.array(key), probs=probs)
        os.replace(tmp, path)  # a study cut short keeps each rate it finished
    return probs


def run(args) -> int:
    if args.table_from:
        try:
            print(table(json.loads(Path(args.table_from).read_text())))
        except (OSError, ValueError, KeyError) as exc:
            raise OnsetError(f"not a study: {args.table_from} ({exc})") from None
        return 0
    from fer_pi.app.config import Config
    from fer_pi.vision.classify import Classifier
    from fer_pi.vision.modelfile import ModelError, resolve_model
    from fer_tools.realfaces import default_dir, manifest_rows, parse_performers

    folder = Path(args.realfaces) if args.realfaces else default_dir()
    if folder is None or not (folder / "MANIFEST.tsv").is_file():
        raise OnsetError("the real-face set was not found: --realfaces DIR (with MANIFEST.tsv) "
                         "or FER_REALFACES")
    try:
        model = resolve_model(args.model)
        clf = Classifier(model, threads=args.threads, flip_tta=True)
    except ModelError as exc:
        raise OnsetError(str(exc)) from None
    onsets = choose(manifest_rows(folder), parse_performers(args.performers), args.per_class,
                    args.seed)
    if not onsets:
        raise OnsetError(f"no performer of {args.performers} has a neutral and an expression "
                         "photo")
    rates = [float(x) for x in args.fps.split(",")]
    base = SmoothSettings()
    result = {"model": clf.info.name, "model_sha256": file_sha256(model),
              "performers": args.performers, "onsets": len(onsets),
              "timeline_s": {"pre": PRE_S, "blend": BLEND_S, "hold": HOLD_S, "post": POST_S},
              "rates": {}, "defaults": asdict(base)}
    cfg = Config()
    for fps in rates:
        probs = probabilities(onsets, folder, fps, cfg, clf, model,
                              Path(args.cache) if args.cache else None)
        rows = [{"setting": name, **asdict(s), **measure(onsets, probs, fps, s)}
                for name, s in settings_grid(base)]
        by_rate = [{"max_hz": hz, **measure(onsets, probs, fps, base, hz)}
                   for hz in _rates(args.classify_hz)]
        result["rates"][f"{fps:g}"] = {"rows": rows, "classify_rates": by_rate,
                                       "lead_curve": lead_curve(onsets, probs, fps, base)}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(table(result))
    return 0


def table(result: dict) -> str:
    lines = [f"{result['model']}, {result['onsets']} onsets of performers "
             f"{result['performers']} (never trained on)"]
    for fps, block in result["rates"].items():
        lines += ["", f"**{fps} FPS**", "",
                  "| setting | shown right | raw right | clips shown / raw | changes /100 "
                  "frames | changes/min held | onset to shown p50 / p90 (onsets the model "
                  "recognises) | uncertain (right to be) |", "|---|---|---|---|---|---|---|---|"]
        for r in block["rows"]:
            wise = (f" ({100 * r['uncertain_right_to_be']:.0f} %)"
                    if r["uncertain_right_to_be"] is not None else "")
            lines.append(
                f"| {r['setting']} | {100 * r['frames_right_shown']:.1f} % | "
                f"{100 * r['frames_right_raw']:.1f} % | {100 * r['clips_right_shown']:.0f} / "
                f"{100 * r['clips_right_raw']:.0f} % | {r['changes_per_100_frames']:.1f} | "
                f"{r['changes_per_min_held']:.1f} | {_s(r['onset_to_shown_p50_s'])} / "
                f"{_s(r['onset_to_shown_p90_s'])} ({_s(r['recognized_onset_to_shown_p50_s'])} / "
                f"{_s(r['recognized_onset_to_shown_p90_s'])}) | "
                f"{100 * r['uncertain_share']:.1f} %{wise} |")
        if block.get("classify_rates"):
            lines += ["", f"classify.max_hz at {fps} FPS (the smoother's defaults)", "",
                      "| classify.max_hz | shown right | raw right | changes/min held | "
                      "onset to shown p50 / p90 |", "|---|---|---|---|---|"]
            for r in block["classify_rates"]:
                lines.append(f"| {r['max_hz']:g}{' (every frame)' if not r['max_hz'] else ''} | "
                             f"{100 * r['frames_right_shown']:.1f} % | "
                             f"{100 * r['frames_right_raw']:.1f} % | "
                             f"{r['changes_per_min_held']:.1f} | "
                             f"{_s(r['onset_to_shown_p50_s'])} / "
                             f"{_s(r['onset_to_shown_p90_s'])} |")
    return "\n".join(lines)


def _rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise OnsetError(f"--classify-hz must be comma-separated numbers, got {text!r}") from None
    if any(r < 0 for r in rates):
        raise OnsetError(f"--classify-hz values must be 0 (every frame) or more, got {text!r}")
    return rates


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "never" if not np.isfinite(seconds) else f"{seconds:.2f} s"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fer_tools.onsets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realfaces", default=None, help="the real-face set (default: "
                   "$FER_REALFACES or ../shared/data/realfaces)")
    p.add_argument("--performers", default="16-30", help="never the ones trained on")
    p.add_argument("--per-class", type=int, default=1, help="expression photos per label "
                   "and performer")
    p.add_argument("--fps", default="10,15,30,60", help="frame rates, comma-separated")
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="", metavar="DIR", help="keep each rate's "
                   "probabilities here and reuse them (a study cut short resumes)")
    p.add_argument("--classify-hz", default="0,3,5,8,10,15", help="classify.max_hz values "
                   "to replay the defaults at (0: every frame)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--table-from", metavar="FILE.json", help="print the table of a study "
                   "already made (its --json output) and stop")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return main_wrapper("onsets", parse_args, run, (OnsetError, DataError), argv)


if __name__ == "__main__":
    sys.exit(main())

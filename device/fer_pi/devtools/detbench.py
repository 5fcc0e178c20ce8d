"""fer-bench --stage detect: how many faces the device finds, how many it invents, and how
steady their identities are, against ground truth (scenes.py).

Two measurements:
- stills: the detector alone on composed frames of one to six faces of 32-200 px: recall by
  face size, false faces per frame, wall and CPU milliseconds per frame;
- clips: the whole pipeline as fer-pi builds it (detector, tracker, confirmation, scan
  thread) on moving-faces clips: recall of the faces it shows, false faces shown per frame
  (what reaches the board, results and MQTT), ID switches and track fragments per
  face-minute, wall and CPU milliseconds per frame.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from fer_pi.app.config import Config
from fer_pi.core.records import Frame
from fer_pi.devtools import scenes as sc

FPS = 30.0


def _ms(values: list[float]) -> dict:
    v = np.asarray(values) * 1e3
    return {"mean": round(float(v.mean()), 3), "p50": round(float(np.percentile(v, 50)), 3),
            "p95": round(float(np.percentile(v, 95)), 3)} if v.size else {}


def stills(cfg: Config, scenes: list[sc.Scene]) -> dict:
    """The detector the settings build, on each scene once (no tracking)."""
    from fer_pi.vision.detect import make_detector, to_gray

    det = make_detector(cfg.detect)  # the scan as a camera's runs it (YuNet: no second look)
    found = defaultdict(int)
    total = defaultdict(int)
    tilt_found, tilt_total = defaultdict(int), defaultdict(int)
    false, wall, cpu = 0, [], []
    for s in scenes:
        t0, c0 = time.perf_counter(), time.process_time()
        boxes = det.detect(s.frame if det.color else to_gray(s.frame))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        m = sc.match(boxes, s.truth)
        false += m["false"]
        for j, t in enumerate(s.truth):
            total[sc.bucket(t.w)] += 1
            found[sc.bucket(t.w)] += j in m["hit"]
            if s.tilts:
                tilt_total[abs(round(s.tilts[j]))] += 1
                tilt_found[abs(round(s.tilts[j]))] += j in m["hit"]
    buckets = [f"{lo}-{hi - 1}" for lo, hi in sc.SIZE_BUCKETS]
    by_tilt = {}
    if tilt_total:
        by_tilt = {"recall_by_tilt": {str(a): round(tilt_found[a] / tilt_total[a], 4)
                                      for a in sorted(tilt_total)},
                   "faces_by_tilt": {str(a): tilt_total[a] for a in sorted(tilt_total)}}
    return {
        **by_tilt,
        "frames": len(scenes), "faces": int(sum(total.values())),
        "recall_by_width": {b: round(found[b] / total[b], 4) if total[b] else None
                            for b in buckets},
        "faces_by_width": {b: total[b] for b in buckets},
        "recall_48_up": _ratio(found, total, buckets[1:]),
        "recall_32_47": _ratio(found, total, buckets[:1]),
        "false_per_frame": round(false / max(1, len(scenes)), 4),
        "wall_ms": _ms(wall), "cpu_ms": _ms(cpu),
    }


def _ratio(found, total, keys) -> float | None:
    n = sum(total[k] for k in keys)
    return round(sum(found[k] for k in keys) / n, 4) if n else None


def clip(cfg: Config, scenes: list[sc.Scene], classifier, live: bool = True) -> dict:
    """The pipeline fer-pi builds from ``cfg`` on one clip, frame by frame as a camera gives
    them (``live``: at 30 frames a second, the whole-frame scan on its worker thread, as
    with a camera). CPU time is the whole process's, the scan thread's included."""
    from fer_pi.app.assemble import build

    pipeline = build(cfg, classifier, live=live)
    start = time.perf_counter()
    shown_ids: dict[int, list[int | None]] = defaultdict(list)
    false = hits = truths = 0
    wall, cpu = [], []
    try:
        for i, s in enumerate(scenes):
            if live:  # frames come at the camera's rate, not as fast as they are taken
                time.sleep(max(0.0, start + i / FPS - time.perf_counter()))
            t0, c0 = time.perf_counter(), time.process_time()
            result = pipeline.process(Frame(i, i / FPS, s.frame, "clip", monotonic=i / FPS))
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            boxes = [f.box for f in result.faces]
            m = sc.match(boxes, s.truth, extra=s.extra)
            false += m["false"]
            hits += len(m["hit"])
            truths += len(s.truth)
            for j, person in enumerate(s.ids):
                k = m["hit"].get(j)
                shown_ids[person].append(result.faces[k].track_id if k is not None else None)
    finally:
        pipeline.close()
    switches = fragments = 0
    for seq in shown_ids.values():
        last, gap = None, False
        for tid in seq:
            if tid is None:
                gap = last is not None
                continue
            if last is not None and tid != last:
                switches += 1
            if last is not None and (tid != last or gap):
                fragments += 1
            last, gap = tid, False
    face_minutes = truths / FPS / 60
    return {"frames": len(scenes), "visible_faces": truths, "recall": round(hits / max(1, truths), 4),
            "false_shown": false, "false_shown_per_frame": round(false / len(scenes), 4),
            "id_switches": switches, "fragments": fragments,
            "id_switches_per_face_minute": round(switches / max(1e-9, face_minutes), 3),
            "fragments_per_face_minute": round(fragments / max(1e-9, face_minutes), 3),
            "wall_ms": _ms(wall), "cpu_ms": _ms(cpu)}


# the pose clips' heads rock from side to side up to this many degrees
ROCK_DEG = 30.0


def run(cfg: Config, model_path, n_stills: int = 200, n_clips: int = 3, clip_frames: int = 300,
        threads: int = 2, seed: int = 0, pose: bool = True) -> dict:
    """Upright stills and clips; with ``pose``, the same again with heads tilted (stills:
    0-40 degrees either way; clips: heads rocking up to ROCK_DEG)."""
    from fer_pi.vision.classify import Classifier

    photos, where = sc.face_photos(seed=seed)
    bgs = sc.backgrounds(640, 480)
    out = {"faces_from": where, "backgrounds": len(bgs),
           "settings": {k: getattr(cfg.detect, k) for k in (
               "detector", "min_size", "detect_width", "scale_factor", "min_neighbors",
               "yunet_score", "verify", "scan_every", "confirm_frames")},
           "stills": stills(cfg, sc.still_scenes(n_stills, photos, bgs, seed))}
    if pose:
        out["pose_stills"] = stills(cfg, sc.still_scenes(n_stills, photos, bgs, seed + 1,
                                                         tilted=True))
    classifier = Classifier(model_path, threads=threads, flip_tta=cfg.model.flip_tta)
    out["clips"] = clips(cfg, photos, bgs, classifier, n_clips, clip_frames, seed, 0.0)
    if pose:
        out["pose_clips"] = clips(cfg, photos, bgs, classifier, n_clips, clip_frames, seed,
                                  ROCK_DEG)
    return out


def clips(cfg: Config, photos, bgs, classifier, n_clips: int, clip_frames: int, seed: int,
          rock: float) -> dict:
    runs = []
    for k in range(n_clips):
        scenes = sc.moving_clip(photos, bgs[k % len(bgs)], clip_frames, seed + k, rock=rock)
        runs.append(clip(cfg, scenes, classifier))
    tot = {key: sum(r[key] for r in runs) for key in ("frames", "visible_faces", "false_shown",
                                                      "id_switches", "fragments")}
    minutes = tot["visible_faces"] / FPS / 60
    return {
        "clips": n_clips, **tot,
        "recall": round(sum(r["recall"] * r["visible_faces"] for r in runs)
                        / max(1, tot["visible_faces"]), 4),
        "false_shown_per_frame": round(tot["false_shown"] / max(1, tot["frames"]), 4),
        "id_switches_per_face_minute": round(tot["id_switches"] / max(1e-9, minutes), 3),
        "fragments_per_face_minute": round(tot["fragments"] / max(1e-9, minutes), 3),
        "wall_ms_mean": round(float(np.mean([r["wall_ms"]["mean"] for r in runs])), 3),
        "cpu_ms_mean": round(float(np.mean([r["cpu_ms"]["mean"] for r in runs])), 3),
        "rock_deg": rock,
        "per_clip": runs,
    }

"""The benchmarks themselves: the whole pipeline on a source, or the model alone on face
crops; per-stage percentiles of every timed frame."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fer_pi.app.config import Config

STAGE_ORDER = ("capture", "detect", "track", "preprocess", "infer", "infer_per_face", "smooth",
               "draw", "total")


class BenchError(Exception):
    pass


def percentiles(values) -> dict:
    v = np.asarray(list(values), np.float64)
    if v.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    return {"n": int(v.size), "p50": round(float(p50), 4), "p95": round(float(p95), 4),
            "p99": round(float(p99), 4), "max": round(float(v.max()), 4),
            "mean": round(float(v.mean()), 4)}


def infer_stats(run: dict) -> dict:
    """An infer-stage run's per-face figures: on real face crops, else on random ones."""
    return run["stages"].get("infer_real") or run["stages"]["infer_random"]


def _screen(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise BenchError(f"--screen must be WIDTHxHEIGHT, got {text!r}") from None
    if not (160 <= w <= 7680 and 120 <= h <= 4320):
        raise BenchError(f"--screen {text} is out of range")
    return w, h


def generated_clip(n_faces: int, width: int, height: int, frames: int = 60) -> Path:
    """Cached per shape: faces drift a few pixels a frame so tracking has work to do."""
    from fer_pi.sources.demo import (
        Placement,
        astronaut_bgr,
        astronaut_face_bgr,
        cache_dir,
        compose,
        grid_placements,
        write_clip,
    )

    path = cache_dir() / f"bench-{n_faces}f-{width}x{height}-v2.avi"
    if path.is_file():
        return path
    if n_faces == 1:  # the whole photo, as in the demo: a lone tile draws a false giant face
        face = astronaut_bgr()
        side = min(400, height - 40, width)
        base = [Placement((width - side) // 2, (height - side) // 2, side)]
    else:
        face = astronaut_face_bgr()
        base = grid_placements(n_faces, width, height)
    clip = []
    for i in range(frames):
        dx = int(8 * np.sin(2 * np.pi * i / frames))
        clip.append(compose([replace(p, x=p.x + dx) for p in base], width, height, face=face))
    return write_clip(path, clip)


def room_clip(n_faces: int, face_px: int, width: int, height: int, frames: int = 60) -> Path:
    """A small group in front of the board: ``n_faces`` copies of the astronaut photo whose
    faces are ``face_px`` wide, side by side on a textured background (scikit-image's
    brick), drifting a few pixels a frame. Cached per shape."""
    from fer_pi.devtools.scenes import astronaut_photo, backgrounds, paste
    from fer_pi.sources.demo import cache_dir, write_clip

    path = cache_dir() / f"room-{n_faces}x{face_px}px-{width}x{height}-v1.avi"
    if path.is_file():
        return path
    photo = astronaut_photo()
    bg = backgrounds(width, height)[2]  # brick
    cols = min(n_faces, 4)
    rows = -(-n_faces // cols)
    clip = []
    for i in range(frames):
        frame = bg.copy()
        dx = 8 * np.sin(2 * np.pi * i / frames)
        for k in range(n_faces):
            cx = width * (k % cols + 0.5) / cols + dx
            cy = height * (k // cols + 0.5) / rows
            paste(frame, photo, face_px, cx, cy)
        clip.append(frame)
    return write_clip(path, clip)


def open_bench_source(args, cfg: Config):
    from fer_pi.sources import open_source

    if args.camera:  # the [detect] settings size the Pi camera's detection stream, and
        # source.rotate turns a camera mounted upside down, as on the appliance
        from fer_pi.vision.detect import scan_width

        return open_source(camera=args.camera, width=args.width, height=args.height,
                           detect_width=scan_width(args.width, cfg.detect),
                           rotate=cfg.source.rotate)
    if args.video:
        video = args.video
    elif args.face_width:
        video = str(room_clip(args.faces, args.face_width, args.width, args.height))
    else:
        video = str(generated_clip(args.faces, args.width, args.height))
    return open_source(video=video, loop=True)


def bench_pipeline(args, cfg: Config, model: Path, threads: int, every: int) -> dict:
    from fer_pi.app.assemble import build
    from fer_pi.app.loop import run
    from fer_pi.vision.classify import Classifier

    cfg = replace(cfg, model=replace(cfg.model, path=str(model), threads=threads),
                  track=replace(cfg.track, detect_every=every,
                                enabled=cfg.track.enabled and not args.no_track))
    classifier = Classifier(model, threads=threads, flip_tta=cfg.model.flip_tta)
    # a camera (or --live: a clip played as one) scans on a thread, as fer-pi does
    pipeline = build(cfg, classifier, live=bool(args.camera or args.live))
    show = None
    if not args.headless:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        from fer_pi.board.paint import offscreen_show

        show = offscreen_show(classifier.info.labels, _screen(args.screen), cfg.board.rotate)

    timed: list = []
    source = open_bench_source(args, cfg)
    try:
        if args.warmup:  # max_frames=0 would mean "until the source ends": never, on a loop
            run(source, pipeline, show=show, max_frames=args.warmup)
        start, cpu0 = time.perf_counter(), time.process_time()
        run(source, pipeline, sinks=[timed.append], show=show, max_frames=args.frames)
        # CPU time of the whole process (user + system, every thread): what a Pi's cores
        # must give, whatever the wall clock of this machine says
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    finally:
        source.close()
        pipeline.close()
    if not timed:
        raise BenchError("the source gave no frames")
    stages: dict[str, list[float]] = {}
    per_face = []
    read = 0  # faces classified (the others carried their last reading: classify.max_hz)
    for r in timed:
        for k, v in r.timings_ms.items():
            stages.setdefault(k, []).append(v)
        n = sum(f.fresh for f in r.faces)
        read += n
        if n:
            per_face.append(r.timings_ms["infer"] / n)
    # "draw" and "total" are added to each frame's timings after the sinks ran (the same
    # dict): every timed frame has them by now, so their percentiles cover every frame
    stages["total"] = [r.timings_ms.get("total", 0.0) for r in timed]
    stages["infer_per_face"] = per_face
    faces = sum(len(r.faces) for r in timed)
    span = timed[-1].frame.steady_t - timed[0].frame.steady_t  # the source's own seconds
    invokes = 2 if classifier.flip_tta else 1
    return {
        "model": classifier.info.name, "model_path": str(model), "threads": threads,
        "flip_tta": classifier.flip_tta, "detect_every": every if pipeline.tracker else 1,
        "tracking": pipeline.tracker is not None,
        "runtime": classifier.runtime, "frames": len(timed),
        "faces_per_frame": round(sum(len(r.faces) for r in timed) / len(timed), 3),
        "fps": round(len(timed) / wall, 2),
        "wall_ms_per_frame": round(1e3 * wall / len(timed), 3),
        "cpu_ms_per_frame": round(1e3 * cpu / len(timed), 3),
        "classify_max_hz": cfg.classify.max_hz,
        # faces classified a second of wall time, and the interpreter calls behind them
        "classified_per_s": round(read / wall, 2),
        "invokes_per_s": round(invokes * read / wall, 2),
        # the share of shown faces classified on their frame, and how often a face was
        # classified a second of the source's time (a camera's: its frames' clock)
        "classified_share": round(read / faces, 4) if faces else None,
        "classify_hz_per_face": round(read / faces * (len(timed) - 1) / span, 2)
        if faces and span > 0 else None,
        "stages": {k: percentiles(stages[k]) for k in STAGE_ORDER if k in stages},
    }


def bench_infer(args, model: Path, threads: int) -> dict:
    from fer_pi.vision.classify import Classifier
    from fer_pi.vision.detect import HaarDetector, to_gray
    from fer_pi.vision.prepare import crop_face

    clf = Classifier(model, threads=threads, flip_tta=args.flip_tta)
    rng = np.random.default_rng(0)
    rand = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(32)]
    source = open_bench_source(args, Config())  # only real face crops are taken from it
    real = []
    try:
        det = HaarDetector()
        while len(real) < 32:
            frame = source.read()
            if frame is None:
                break
            gray = to_gray(frame.image)
            real += [crop_face(gray, b, clf.input_size) for b in det.detect(gray)]
    finally:
        source.close()
    out = {"model": clf.info.name, "model_path": str(model), "threads": threads,
           "flip_tta": clf.flip_tta, "runtime": clf.runtime, "stages": {}}
    for name, crops in (("infer_random", rand), ("infer_real", real)):
        if not crops:
            continue
        for i in range(args.warmup):
            clf.probabilities(crops[i % len(crops)])
        times = []
        for i in range(args.frames):
            t0 = time.perf_counter()
            clf.probabilities(crops[i % len(crops)])
            times.append((time.perf_counter() - t0) * 1e3)
        out["stages"][name] = percentiles(times)
    return out

"""Soak benchmark: replay a clip through the real pipeline (and the off-screen board)
for a set time; report resident memory, open files and FPS over time as JSON.

    python -m fer_pi.devtools.soak --minutes 20 --json > soak.json

Memory growth is measured from the end of the first minute (warm-up: caches,
interpreter arenas, font glyphs), FPS drift against the first minute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from fer_pi import machine


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_pi.devtools.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--video", default="", help="clip to replay (default: generated, 2 faces)")
    p.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--headless", action="store_true", help="skip the off-screen board")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.sample_s <= 0:
        print("soak: --minutes and --sample-s must be positive", file=sys.stderr)
        return 2

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from fer_pi.app.assemble import build
    from fer_pi.app.config import Config
    from fer_pi.app.loop import run
    from fer_pi.devtools.stages import generated_clip
    from fer_pi.sources import VideoFile

    clip = Path(args.video) if args.video else generated_clip(2, 640, 480)
    src = VideoFile(clip, loop=True)
    src.open()
    pipeline = build(Config())
    show = None
    if not args.headless:
        from fer_pi.board.paint import offscreen_show

        show = offscreen_show(pipeline.classifier.info.labels, (800, 480))

    stop = threading.Event()
    samples = []
    frames = [0]
    t0 = time.monotonic()

    def count(_result):
        frames[0] += 1

    def sampler():
        last_t, last_n = t0, 0
        while not stop.wait(args.sample_s):
            now, n = time.monotonic(), frames[0]
            samples.append({"t_s": round(now - t0, 1), "rss_mb": round(rss_mb(), 2),
                            "open_files": open_files(),
                            "fps": round((n - last_n) / max(1e-9, now - last_t), 2),
                            "frames": n, **machine.thermal()})
            if not args.json:
                print(f"{samples[-1]}", file=sys.stderr, flush=True)
            last_t, last_n = now, n
            if now - t0 >= args.minutes * 60:
                stop.set()

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    run(src, pipeline, sinks=[count], show=show, stop=stop)
    th.join(5)
    src.close()

    warm = [s for s in samples if s["t_s"] <= 60] or samples[:1]
    later = [s for s in samples if s["t_s"] > 60] or samples[-1:]
    base_rss = warm[-1]["rss_mb"] if warm else float("nan")
    base_fps = sum(s["fps"] for s in warm) / max(1, len(warm))
    last_fps = sum(s["fps"] for s in later[-6:]) / max(1, len(later[-6:]))
    report = {
        "schema": "fer-soak/1", "machine": machine.describe(), "minutes": args.minutes,
        "clip": str(clip), "board": not args.headless, "threads": pipeline.classifier.threads,
        "rss_mb_after_first_minute": base_rss,
        "rss_mb_end": samples[-1]["rss_mb"] if samples else None,
        "rss_growth_mb_after_first_minute": round(max(s["rss_mb"] for s in later) - base_rss, 2)
        if later else None,
        "fps_first_minute": round(base_fps, 2), "fps_last_minute": round(last_fps, 2),
        "fps_drift_pct": round(100 * (last_fps - base_fps) / base_fps, 2) if base_fps else None,
        "open_files_start": samples[0]["open_files"] if samples else None,
        "open_files_end": samples[-1]["open_files"] if samples else None,
        "samples": samples,
    }
    print(json.dumps(report, indent=1 if args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())

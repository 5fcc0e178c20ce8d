"""fer-bench: per-stage latency (p50/p95/p99/max ms) and FPS of the real pipeline.

Runs every combination of --model, --threads and --detect-every on one source,
records the machine beside the figures, prints a table (or --json), and with
--remote runs the same benchmark on a Pi over SSH and prints both side by side.
With --output, each finished run is also kept in OUTPUT.partial.jsonl, so that an
interrupted sweep continues with --resume instead of starting over.
The benchmarks are in stages.py, the resume store in resume.py, the remote side in remote.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_pi import machine
from fer_pi.app.config import Config, ConfigError, from_dict
from fer_pi.devtools.remote import LocalTransport, SSHTransport, run_remote
from fer_pi.devtools.resume import SCHEMA, Partial
from fer_pi.devtools.stages import (
    BenchError,
    _screen,
    bench_infer,
    bench_pipeline,
    infer_stats,
)
from fer_pi.sources.demo import NeedsExtra
from fer_pi.vision.modelfile import ModelError, resolve_model


def _int_list(text: str, name: str, lo: int, hi: int) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BenchError(f"--{name} must be comma-separated integers, got {text!r}") from None
    if not vals or any(not lo <= x <= hi for x in vals):
        raise BenchError(f"--{name} values must be {lo}..{hi}, got {text!r}")
    return vals


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fer-bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("source (default: a generated 640x480 clip)")
    src.add_argument("--camera", default="", help="camera index or 'picam'")
    src.add_argument("--video", default="", help="a video file (replayed as needed)")
    src.add_argument("--faces", type=int, default=1, help="faces in the generated clip (0..6)")
    src.add_argument("--face-width", type=int, default=0, help="faces of this many pixels on a "
                     "textured background instead (a small group: --faces 4 --face-width 55)")
    src.add_argument("--width", type=int, default=640)
    src.add_argument("--height", type=int, default=480)
    p.add_argument("--model", default="default", help="comma-separated model names or paths")
    p.add_argument("--threads", default="2", help="comma-separated thread counts, e.g. 1,2,4")
    p.add_argument("--detect-every", default="", help="comma-separated detection cadences "
                   "(default: the config's track.detect_every)")
    p.add_argument("--frames", type=int, default=300, help="frames timed per run")
    p.add_argument("--warmup", type=int, default=30, help="frames run before timing")
    p.add_argument("--headless", action="store_true", help="no draw stage")
    p.add_argument("--live", action="store_true", help="treat the clip as a camera: the "
                   "whole-frame scan on its own thread, as fer-pi does with a camera (a file "
                   "is scanned in the loop, so its results are the same run after run)")
    p.add_argument("--screen", default="800x480", help="off-screen board size for the draw stage")
    p.add_argument("--no-track", action="store_true", help="no tracking and smoothing")
    p.add_argument("--no-flip-tta", dest="flip_tta", action="store_false",
                   help="one inference per face instead of the face and its mirror")
    p.add_argument("--stage", choices=["pipeline", "infer", "detect"], default="pipeline",
                   help="'infer' times the model alone on random and real face crops; 'detect' "
                   "measures face finding against ground truth (composed scenes: recall by "
                   "face size, false faces, ID switches; see fer_pi.devtools.detbench)")
    p.add_argument("--scenes", type=int, default=200, help="--stage detect: still scenes")
    p.add_argument("--detector", choices=["haar", "yunet"], default=None,
                   help="--stage detect: the detector to measure (default: the config's)")
    p.add_argument("--no-pose", action="store_true", help="--stage detect: upright scenes "
                   "only (no tilted stills, no rocking-head clips)")
    p.add_argument("--clips", type=int, default=3, help="--stage detect: moving-faces clips of "
                   "10 s each (played at camera rate, the scan on its thread)")
    p.add_argument("--config", help="TOML settings to start from (as fer-pi's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--output", help="also write the JSON to this file (finished runs are kept "
                   "in OUTPUT.partial.jsonl until the sweep ends)")
    p.add_argument("--resume", action="store_true", help="reuse the finished runs of an "
                   "interrupted sweep with the same --output and settings")
    p.add_argument("--remote", help="user@host of a Pi with fer-pi installed ('local' runs "
                   "the remote path on this machine)")
    p.add_argument("--ssh-config", help="ssh_config file for --remote (port, key, ...)")
    p.add_argument("--remote-cmd", default="fer-bench", help="fer-bench on the remote host, "
                   "e.g. /opt/fer-pi/venv/bin/fer-bench")
    return p.parse_args(argv)


def run_local(args) -> dict:
    models = [resolve_model(m.strip()) for m in args.model.split(",") if m.strip()]
    if not models:
        raise BenchError("--model is empty")
    threads = _int_list(args.threads, "threads", 1, 64)
    if args.frames < 1:
        raise BenchError(f"--frames must be at least 1, got {args.frames}")
    if args.warmup < 0:
        raise BenchError(f"--warmup must be 0 or more, got {args.warmup}")
    if not 0 <= args.faces <= 6:
        raise BenchError(f"--faces must be 0..6, got {args.faces}")
    if not args.headless:
        _screen(args.screen)
    if args.video and not Path(args.video).is_file():
        raise BenchError(f"video not found: {args.video}")
    cfg = Config()
    if args.config:
        from fer_pi.app.config import load_file

        cfg = load_file(args.config)
    cfg = from_dict({"model": {"flip_tta": bool(args.flip_tta and cfg.model.flip_tta)}}, cfg)
    cadences = _int_list(args.detect_every or str(cfg.track.detect_every), "detect-every", 1, 30)
    before = machine.thermal()
    plan = [(m, n, e) for m in models for n in threads
            for e in ([None] if args.stage == "infer" else cadences)]
    partial = Partial(args, cfg, models) if args.output else None
    done = partial.load(args.resume) if partial else {}
    runs = []
    for i, (model, n, every) in enumerate(plan, 1):
        key = f"{model}|{n}|{every}"
        run = done.get(key)
        if run is None:
            run = (bench_infer(args, model, n) if every is None
                   else bench_pipeline(args, cfg, model, n, every))
            if partial:
                partial.add(key, run)
        runs.append(run)
        figure = (f"{run['fps']} FPS" if "fps" in run else
                  f"p50 {infer_stats(run)['p50']} ms")
        print(f"  [{i}/{len(plan)}] {run['model']} threads={n}"
              f"{'' if every is None else f' detect_every={every}'}: {figure}"
              f"{' (kept from the interrupted sweep)' if key in done else ''}",
              file=sys.stderr, flush=True)
    return {
        "schema": SCHEMA, "stage": args.stage,
        "machine": machine.describe(),
        "thermal": {"before": before, "after": machine.thermal()},
        "source": {"kind": "camera" if args.camera else "video" if args.video else "generated",
                   "camera": args.camera or None, "video": args.video or None,
                   "faces": None if (args.camera or args.video) else args.faces,
                   "face_width": args.face_width or None,
                   "resolution": [args.width, args.height]},
        "settings": {"frames": args.frames, "warmup": args.warmup, "headless": args.headless,
                     "live": args.live,
                     "screen": None if args.headless else args.screen,
                     "rotate": None if args.headless else cfg.board.rotate,
                     "detect_width": cfg.detect.detect_width},
        "runs": runs,
    }


def table(report: dict, title: str = "") -> str:
    m = report["machine"]
    head = m["pi_model"] or m["cpu"]
    lines = [f"{title}{head}, {m['cores']} cores, {m['arch']} ({simd_words(m)}); python "
             f"{m['versions']['python']}, "
             f"opencv {m['versions']['opencv']}; temp {report['thermal']['before']['temperature_c']}"
             f" -> {report['thermal']['after']['temperature_c']} C, throttled "
             f"{report['thermal']['after']['throttled']}"]
    for r in report["runs"]:
        extra = (f" detect_every={r['detect_every']} faces/frame={r['faces_per_frame']} "
                 f"FPS={r['fps']}") if "fps" in r else ""
        lines.append(f"  {r['model']} threads={r['threads']} ({r['runtime']}){extra}")
        lines.append(f"    {'stage':16s}{'p50':>9s}{'p95':>9s}{'p99':>9s}{'max':>9s}  ms")
        for k, s in r["stages"].items():
            if s.get("n"):
                lines.append(f"    {k:16s}{s['p50']:9.3f}{s['p95']:9.3f}{s['p99']:9.3f}"
                             f"{s['max']:9.3f}")
    return "\n".join(lines)


def run_detect(args) -> dict:
    from fer_pi.devtools import detbench

    cfg = Config()
    if args.config:
        from fer_pi.app.config import load_file

        cfg = load_file(args.config)
    if args.detector:
        from dataclasses import replace

        cfg = replace(cfg, detect=replace(cfg.detect, detector=args.detector))
    model = resolve_model(args.model.split(",")[0].strip())
    threads = _int_list(args.threads, "threads", 1, 64)[0]
    return {"schema": SCHEMA, "stage": "detect", "machine": machine.describe(),
            "threads": threads, **detbench.run(cfg, model, args.scenes, args.clips,
                                               threads=threads, pose=not args.no_pose)}


def detect_table(r: dict) -> str:
    m = r["machine"]
    lines = [f"{m['pi_model'] or m['cpu']}, {m['cores']} cores ({simd_words(m)}); faces from "
             f"{r['faces_from']}; "
             f"{r['settings']}"]
    for key, name in (("stills", "stills"), ("pose_stills", "tilted stills")):
        st = r.get(key)
        if st is None:
            continue
        line = (f"  {name} ({st['frames']} frames, {st['faces']} faces): recall by face width "
                + ", ".join(f"{k} px {v:.3f}" for k, v in st["recall_by_width"].items()
                            if v is not None))
        if st.get("recall_by_tilt"):
            line += "; by tilt " + ", ".join(f"{k} deg {v:.3f}"
                                             for k, v in st["recall_by_tilt"].items())
        lines.append(line + f"; false faces {st['false_per_frame']:.3f} a frame; scan "
                     f"{st['wall_ms']['mean']:.1f} ms wall, {st['cpu_ms']['mean']:.1f} ms CPU")
    for key, name in (("clips", "clips"), ("pose_clips", "rocking-head clips")):
        cl = r.get(key)
        if cl is None:
            continue
        lines.append(
            f"  {name} ({cl['clips']} x {cl['frames'] // max(1, cl['clips'])} frames, "
            f"{cl['visible_faces']} visible faces): recall {cl['recall']:.3f}; false faces "
            f"shown {cl['false_shown_per_frame']:.4f} a frame; ID switches "
            f"{cl['id_switches_per_face_minute']:.2f} and fragments "
            f"{cl['fragments_per_face_minute']:.2f} a face-minute; {cl['wall_ms_mean']:.1f} ms "
            f"wall, {cl['cpu_ms_mean']:.1f} ms CPU a frame")
    return "\n".join(lines)


def simd_words(m: dict) -> str:
    """The SIMD beside every figure: the same model is about 5x slower without VNNI."""
    simd = m.get("simd") or []
    return "SIMD " + " ".join(simd) if simd else "SIMD not reported"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.resume and (args.remote or not args.output):
            raise BenchError("--resume needs --output (the sweep to continue) and no --remote")
        if args.stage == "detect":
            result = run_detect(args)
            if args.output:
                Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
            print(json.dumps(result, indent=1) if args.json else detect_table(result))
            return 0
        if args.remote:
            transport = LocalTransport() if args.remote == "local" else \
                SSHTransport(args.remote, args.ssh_config)
            try:
                result: dict = {"schema": SCHEMA, "remote_host": transport.name}
                # the remote run first: local CPU load must not heat the comparison
                result["remote"] = run_remote(args, transport)
                result["local"] = run_local(args)
            finally:
                transport.close()
            text = (table(result["local"], "local: ") + "\n" +
                    table(result["remote"], f"remote {transport.name}: "))
        else:
            result = run_local(args)
            text = table(result)
    except (BenchError, ModelError, ConfigError, NeedsExtra) as exc:
        print(f"fer-bench: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a source that cannot open, a display error: one line
        from fer_pi.sources import SourceError

        if isinstance(exc, SourceError):
            print(f"fer-bench: error: {exc}", file=sys.stderr)
            return 3
        raise
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
        Path(args.output + ".partial.jsonl").unlink(missing_ok=True)
    print(json.dumps(result, indent=1) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

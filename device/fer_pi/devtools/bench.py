"""fer-bench: per-stage latency (p50/p95/p99/max ms) and FPS of the real pipeline.

Runs every combination of --model, --threads and --detect-every on one source,
records the machine beside the figures, prints a table (or --json), and with
--remote runs the same benchmark on a Pi over SSH and prints both side by side.
With --output, each finished run is also kept in OUTPUT.partial.jsonl, so that an
interrupted sweep continues with --resume instead of starting over.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from fer_pi import machine
from fer_pi.app.config import Config, ConfigError, from_dict
from fer_pi.vision.modelfile import ModelError, resolve_model

SCHEMA = "fer-bench/1"
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
    src.add_argument("--width", type=int, default=640)
    src.add_argument("--height", type=int, default=480)
    p.add_argument("--model", default="default", help="comma-separated model names or paths")
    p.add_argument("--threads", default="2", help="comma-separated thread counts, e.g. 1,2,4")
    p.add_argument("--detect-every", default="2", help="comma-separated detection cadences")
    p.add_argument("--frames", type=int, default=300, help="frames timed per run")
    p.add_argument("--warmup", type=int, default=30, help="frames run before timing")
    p.add_argument("--headless", action="store_true", help="no draw stage")
    p.add_argument("--screen", default="800x480", help="off-screen board size for the draw stage")
    p.add_argument("--no-track", action="store_true", help="no tracking and smoothing")
    p.add_argument("--no-flip-tta", dest="flip_tta", action="store_false",
                   help="one inference per face instead of the face and its mirror")
    p.add_argument("--stage", choices=["pipeline", "infer"], default="pipeline",
                   help="'infer' times the model alone on random and real face crops")
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
    from fer_pi.devtools.synth import (
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


def _open_source(args, cfg: Config):
    from fer_pi.sources import open_source

    if args.camera:  # the config's detect_width sizes the Pi camera's detection stream, and
        # its source.rotate turns a camera mounted upside down, as on the appliance
        return open_source(camera=args.camera, width=args.width, height=args.height,
                           detect_width=cfg.detect.detect_width, rotate=cfg.source.rotate)
    video = args.video or str(generated_clip(args.faces, args.width, args.height))
    return open_source(video=video, loop=True)


def bench_pipeline(args, cfg: Config, model: Path, threads: int, every: int) -> dict:
    from fer_pi.vision.classify import Classifier
    from fer_pi.vision.pipeline import build, run

    cfg = replace(cfg, model=replace(cfg.model, path=str(model), threads=threads),
                  track=replace(cfg.track, detect_every=every,
                                enabled=cfg.track.enabled and not args.no_track))
    classifier = Classifier(model, threads=threads, flip_tta=cfg.model.flip_tta)
    pipeline = build(cfg, classifier)
    show = None
    if not args.headless:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        from fer_pi.board.paint import offscreen_show

        show = offscreen_show(classifier.info.labels, _screen(args.screen), cfg.board.rotate)

    timed: list = []
    source = _open_source(args, cfg)
    try:
        if args.warmup:  # max_frames=0 would mean "until the source ends": never, on a loop
            run(source, pipeline, show=show, max_frames=args.warmup)
        start = time.perf_counter()
        run(source, pipeline, sinks=[timed.append], show=show, max_frames=args.frames)
        wall = time.perf_counter() - start
    finally:
        source.close()
    if not timed:
        raise BenchError("the source gave no frames")
    stages: dict[str, list[float]] = {}
    per_face = []
    for r in timed:
        for k, v in r.timings_ms.items():
            stages.setdefault(k, []).append(v)
        if r.faces:
            per_face.append(r.timings_ms["infer"] / len(r.faces))
    # "draw" and "total" are added to each frame's timings after the sinks ran (the same
    # dict): every timed frame has them by now, so their percentiles cover every frame
    stages["total"] = [r.timings_ms.get("total", 0.0) for r in timed]
    stages["infer_per_face"] = per_face
    return {
        "model": classifier.info.name, "model_path": str(model), "threads": threads,
        "flip_tta": classifier.flip_tta, "detect_every": every if pipeline.tracker else 1,
        "tracking": pipeline.tracker is not None,
        "runtime": classifier.runtime, "frames": len(timed),
        "faces_per_frame": round(sum(len(r.faces) for r in timed) / len(timed), 3),
        "fps": round(len(timed) / wall, 2),
        "stages": {k: percentiles(stages[k]) for k in STAGE_ORDER if k in stages},
    }


def bench_infer(args, model: Path, threads: int) -> dict:
    from fer_pi.vision.classify import Classifier
    from fer_pi.vision.detect import HaarDetector, to_gray
    from fer_pi.vision.prepare import crop_face

    clf = Classifier(model, threads=threads, flip_tta=args.flip_tta)
    rng = np.random.default_rng(0)
    rand = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(32)]
    source = _open_source(args, Config())  # only real face crops are taken from it
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


def run_local(args) -> dict:
    models = [resolve_model(m.strip()) for m in args.model.split(",") if m.strip()]
    if not models:
        raise BenchError("--model is empty")
    threads = _int_list(args.threads, "threads", 1, 64)
    cadences = _int_list(args.detect_every, "detect-every", 1, 30)
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
                   "resolution": [args.width, args.height]},
        "settings": {"frames": args.frames, "warmup": args.warmup, "headless": args.headless,
                     "screen": None if args.headless else args.screen,
                     "rotate": None if args.headless else cfg.board.rotate,
                     "detect_width": cfg.detect.detect_width},
        "runs": runs,
    }


class Partial:
    """OUTPUT.partial.jsonl: a header naming what the sweep measures, then one finished run
    a line. A run is reused only when the header matches: same machine, software, source,
    settings and model files (by hash), so a resumed sweep is one sweep."""

    def __init__(self, args, cfg: Config, models: list[Path]):
        self.path = Path(args.output + ".partial.jsonl")
        m = machine.describe()
        self.header = {
            "schema": SCHEMA, "stage": args.stage,
            "machine": {k: m[k] for k in ("pi_model", "cpu", "cores", "arch", "versions")},
            "source": [args.camera, args.video, args.faces, args.width, args.height],
            "settings": [args.frames, args.warmup, args.headless, args.screen, args.no_track,
                         cfg.model.flip_tta, cfg.detect.detect_width, cfg.board.rotate],
            "models": {str(p): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in models},
        }

    def load(self, resume: bool) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        if not resume:
            print(f"fer-bench: starting over; {self.path} is replaced (--resume would have "
                  "continued it)", file=sys.stderr)
            self.path.unlink()
            return {}
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0])
        except (IndexError, json.JSONDecodeError):
            raise BenchError(f"--resume: {self.path} has no valid header") from None
        for key in self.header:
            if header.get(key) != self.header[key]:
                raise BenchError(f"--resume: {self.path} was measured with different {key}: "
                                 "start over without --resume")
        done = {}
        for line in lines[1:]:
            try:
                rec = json.loads(line)
                done[rec["key"]] = rec["run"]
            except (json.JSONDecodeError, KeyError, TypeError):
                break  # a line cut short by the interruption: measure that run again
        # rewrite what was read, so a torn last line does not stay before new runs
        self.path.write_text("".join(json.dumps(x) + "\n" for x in
                                     [self.header, *({"key": k, "run": r} for k, r in done.items())]))
        return done

    def add(self, key: str, run: dict) -> None:
        new = not self.path.is_file()
        with self.path.open("a") as fh:
            if new:
                fh.write(json.dumps(self.header) + "\n")
            fh.write(json.dumps({"key": key, "run": run}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


# --- remote --------------------------------------------------------------------------------

class Transport(Protocol):
    name: str

    def put(self, local: Path) -> str: ...
    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess: ...
    def close(self) -> None: ...


class SSHTransport:
    """ssh/scp in batch mode: keys, not passwords, so it never hangs at a prompt."""

    OPTS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]

    def __init__(self, host: str, config: str | None = None):
        self.name = host
        self.host = host
        if config:  # an ssh_config(5) file: port, key, jump host, as the user keeps them
            if not Path(config).is_file():
                raise BenchError(f"ssh config not found: {config}")
            self.OPTS = ["-F", config, *self.OPTS]
        proc = subprocess.run(["ssh", *self.OPTS, host, "mktemp -d /tmp/fer-bench.XXXXXX"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise BenchError(f"cannot reach {host} over ssh: {proc.stderr.strip()[:200]}")
        self.dir = proc.stdout.strip()

    def put(self, local: Path) -> str:
        if not local.is_file():
            raise BenchError(f"file not found: {local}")
        dest = f"{self.dir}/{local.name}"
        files = [str(local)] + ([str(local.with_suffix(".json"))]
                                if local.with_suffix(".json").is_file() else [])
        proc = subprocess.run(["scp", "-q", *self.OPTS, *files, f"{self.host}:{self.dir}/"],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise BenchError(f"scp to {self.host} failed: {proc.stderr.strip()[:200]}")
        return dest

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", *self.OPTS, self.host, shlex.join(argv)],
                              capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        subprocess.run(["ssh", *self.OPTS, self.host, f"rm -rf {shlex.quote(self.dir)}"],
                       capture_output=True, timeout=30)


class LocalTransport:
    """The remote path on this machine, through a subprocess and a scratch folder."""

    def __init__(self):
        self.name = "local"
        self._tmp = tempfile.TemporaryDirectory(prefix="fer-bench-")
        self.dir = Path(self._tmp.name)

    def put(self, local: Path) -> str:
        import shutil

        if not local.is_file():
            raise BenchError(f"file not found: {local}")
        shutil.copy2(local, self.dir / local.name)
        if local.with_suffix(".json").is_file():
            shutil.copy2(local.with_suffix(".json"), self.dir / local.with_suffix(".json").name)
        return str(self.dir / local.name)

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "fer_pi.devtools.bench", *argv[1:]]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        self._tmp.cleanup()


def run_remote(args, transport: Transport) -> dict:
    models = [resolve_model(m.strip()) for m in args.model.split(",") if m.strip()]
    remote_models = [transport.put(m) for m in models]
    argv = [args.remote_cmd, "--json", "--model", ",".join(remote_models),
            "--threads", args.threads, "--detect-every", args.detect_every,
            "--frames", str(args.frames), "--warmup", str(args.warmup), "--stage", args.stage,
            "--faces", str(args.faces), "--width", str(args.width), "--height", str(args.height)]
    if args.headless:
        argv.append("--headless")
    if args.no_track:
        argv.append("--no-track")
    if not args.flip_tta:
        argv.append("--no-flip-tta")
    if not args.headless:
        argv += ["--screen", args.screen]
    if args.camera:
        argv += ["--camera", args.camera]
    if args.video:  # like for like: the same clip and settings on both machines
        argv += ["--video", transport.put(Path(args.video))]
    if args.config:
        argv += ["--config", transport.put(Path(args.config))]
    proc = transport.run(argv, timeout=3600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"fer-bench on {transport.name} failed: {last}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"fer-bench on {transport.name} printed no JSON") from None


# --- report --------------------------------------------------------------------------------

def table(report: dict, title: str = "") -> str:
    m = report["machine"]
    head = m["pi_model"] or m["cpu"]
    lines = [f"{title}{head}, {m['cores']} cores, {m['arch']}; python {m['versions']['python']}, "
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


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.resume and (args.remote or not args.output):
            raise BenchError("--resume needs --output (the sweep to continue) and no --remote")
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
    except (BenchError, ModelError, ConfigError) as exc:
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

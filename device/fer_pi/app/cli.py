"""fer-pi: the command line. Builds the stages from the validated config and runs them.

Exit codes: 0 done (source ended, q/Esc, SIGINT/SIGTERM); 1 unexpected error;
2 bad command line or config; 3 source cannot be opened; 4 model unusable;
5 output cannot be written; 6 display cannot be opened.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from fer_pi import __version__
from fer_pi.app import config as cfgmod
from fer_pi.app.labels import parse_names
from fer_pi.app.words import parse_words
from fer_pi.outputs.results import OutputError
from fer_pi.sources import SourceError
from fer_pi.sources.hours import Hours, when
from fer_pi.sources.idle import IdlePacer, paced
from fer_pi.vision.detect import DetectorError
from fer_pi.vision.modelfile import ModelError

log = logging.getLogger("fer_pi")

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_SOURCE, EXIT_MODEL, EXIT_OUTPUT, EXIT_DISPLAY = range(7)
# expected failures: one line naming the problem, and the exit code documented below
ERRORS = {
    ModelError: ("model error", EXIT_MODEL),
    SourceError: ("source error", EXIT_SOURCE),
    OutputError: ("output error", EXIT_OUTPUT),
    DetectorError: ("detector error", EXIT_ERROR),
    cfgmod.ConfigError: ("config error", EXIT_CONFIG),
}

EPILOG = """\
exit codes:
  0  finished: the source ended, q/Esc pressed, or SIGINT/SIGTERM received
  1  unexpected error
  2  bad command line or configuration (the message names the key)
  3  the camera, video or image folder cannot be opened
  4  the model is missing, corrupt or not a 48x48 grayscale 7-class model
  5  the output file cannot be written
  6  the display cannot be opened (use --headless)

examples:
  fer-pi --demo                          a generated clip, windowed or headless
  fer-pi --camera 0                      USB webcam, fullscreen board
  fer-pi --camera picam --windowed       Pi camera in a window
  fer-pi --video clip.mp4 --headless --output results.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fer-pi",
        description="Live facial-emotion board: camera -> Haar faces -> int8 TFLite CNN -> "
        "fullscreen pygame board. Settings come from defaults, then --config, then options.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fer-pi {__version__}")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (sections as in "
                   "--print-config)")
    p.add_argument("--print-config", action="store_true", help="print the effective settings "
                   "as TOML and exit")
    p.add_argument("--check-config", action="store_true", help="validate the settings and the "
                   "model, print OK and exit")
    p.add_argument("--list-models", action="store_true", help="list the shipped models "
                   "(name for --model, size, PublicTest accuracy) and exit")
    p.add_argument("--list-cameras", action="store_true", help="list the cameras and the "
                   "--camera value that opens each, and exit (3 when there is none)")
    p.add_argument("--demo", action="store_true", help="run on a generated clip (needs "
                   "scikit-image): in a window when a display exists, headless otherwise")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    cfgmod.add_arguments(p)
    return p


def resolve_config(args: argparse.Namespace) -> cfgmod.Config:
    cfg = cfgmod.load_file(args.config) if args.config else cfgmod.Config()
    return cfgmod.from_dict(cfgmod.overrides_from_args(args), base=cfg)


def demo_config(cfg: cfgmod.Config) -> cfgmod.Config:
    """Point the source at a generated clip; headless with a summary when there is no screen."""
    from dataclasses import replace

    from fer_pi.board.display import has_display
    from fer_pi.devtools.synth import cache_dir, demo_clip

    clip = cache_dir() / "demo-v2.avi"  # bump when synth.demo_placements changes
    if not clip.is_file():
        demo_clip(clip)
    headless = cfg.output.headless or not has_display()
    source = replace(cfg.source, video=str(clip), camera="", images="", loop=not headless)
    output = replace(cfg.output, headless=headless)
    board = replace(cfg.board, fullscreen=False) if not headless else cfg.board
    return replace(cfg, source=source, output=output, board=board)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fer_pi.outputs.notify import setup_logging

    setup_logging(args.log_level)
    if args.list_models:
        from fer_pi.vision.modelfile import describe_shipped

        print("\n".join(describe_shipped()))
        return EXIT_OK
    if args.list_cameras:
        from fer_pi.sources.camera_list import describe

        lines, found = describe()
        print("\n".join(lines))
        return EXIT_OK if found else EXIT_SOURCE
    try:
        cfg = resolve_config(args)
        if args.demo:
            cfg = demo_config(cfg)
    except cfgmod.ConfigError as exc:
        print(f"fer-pi: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except RuntimeError as exc:  # demo without scikit-image
        print(f"fer-pi: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.print_config:
        print(cfgmod.to_toml(cfg))
        return EXIT_OK
    try:
        return run_app(cfg, check_only=args.check_config, demo=args.demo)
    except tuple(ERRORS) as exc:
        what, code = ERRORS[type(exc)]
        print(f"fer-pi: {what}: {exc}", file=sys.stderr)
        return code


def run_app(cfg: cfgmod.Config, check_only: bool = False, demo: bool = False) -> int:
    from fer_pi.outputs.events import room_summary
    from fer_pi.outputs.health import HealthState, HealthWriter
    from fer_pi.outputs.notify import Notifier
    from fer_pi.outputs.results import ResultWriter
    from fer_pi.sources import ResilientSource, make_source
    from fer_pi.vision.classify import Classifier
    from fer_pi.vision.modelfile import resolve_model
    from fer_pi.vision.pipeline import build, run

    model_path = resolve_model(cfg.model.path)
    classifier = Classifier(model_path, threads=cfg.model.threads, flip_tta=cfg.model.flip_tta)
    if cfg.source.images and cfg.track.detect_every > 1:
        # stills are unrelated pictures: predicting boxes from one into the next is wrong
        from dataclasses import replace

        cfg = replace(cfg, track=replace(cfg.track, detect_every=1))
    pipeline = build(cfg, classifier)
    if check_only:
        print(f"config OK; model {classifier.info.name} ({model_path}), runtime "
              f"{classifier.runtime}")
        return EXIT_OK
    if not (cfg.source.camera or cfg.source.video or cfg.source.images):
        print("fer-pi: config error: no source: give --camera N, --camera picam, --video PATH, "
              "--images DIR or --demo", file=sys.stderr)
        return EXIT_CONFIG

    o = cfg.output
    writer = (ResultWriter(o.path, classifier.info.labels, o.interval_s, o.append, keep=o.keep)
              if o.path else None)
    sinks = [writer.write] if writer else []
    stop = threading.Event()
    notifier = Notifier()
    state = HealthState(model=classifier.info.name)
    if writer is not None:
        state.output = writer.status
    health = HealthWriter(cfg.health.state_file, cfg.health.metrics_file, cfg.health.interval_s,
                          state)
    publisher = None
    if cfg.mqtt.enabled:
        from fer_pi.outputs.mqtt import MqttPublisher

        publisher = MqttPublisher(cfg.mqtt, classifier.info.labels, state)  # no paho: exit 2
    status_server = None
    display = None
    stats_ref: list = []
    tv = None
    if cfg.board.cec_device and not cfg.output.headless:
        from fer_pi.board.tvpower import CecScreen

        tv = CecScreen(cfg.board.cec_device)

    def on_wait(message: str) -> None:
        """The camera is being retried: say so on the board, to systemd and in health."""
        state.camera_state = source.state  # retrying, or closed outside source.hours
        notifier.keepalive(message)
        if tv is not None:
            tv.follow(source.state)  # closed for the night: the screen to standby
        if display is not None:
            from fer_pi.vision.pipeline import RunStats

            board = display.board  # the banner in the room's words (board.words)
            display.status = (board.say("closed", time=when(source.opens_at, datetime.now(),
                                                            tuple(board.say("days").split())))
                              if source.state == "closed" and source.opens_at else
                              board.say("camera_lost", s=f"{source.retry_in_s:.0f}"))
            display.night = source.state == "closed"
            if not display.show(None, stats_ref[0] if stats_ref else RunStats()):
                stop.set()
        # frames_total is a Prometheus counter: it must not fall back to 0 while waiting
        frames = stats_ref[0].frames if stats_ref else 0
        state.update(0.0, 0, frames, {}, room_summary((), classifier.info.labels))
        health.maybe_write()
        if publisher is not None:
            publisher.on_frame(None)

    if publisher is not None:
        publisher.start()
    if cfg.status.enabled:
        from fer_pi.outputs.status import StatusServer

        token = (cfgmod.read_secret(cfg.status.token_file, "status.token_file")
                 if cfg.status.token_file else None)
        status_server = StatusServer(cfg.status.host, cfg.status.port, state, token=token)
        status_server.start()
    s = cfg.source
    dw = cfg.detect.detect_width
    source = make_source(s.camera, s.video, s.images, s.loop, s.width, s.height, s.fps, dw,
                         s.rotate)
    if s.camera:
        def reopen():
            return make_source(s.camera, width=s.width, height=s.height, fps=s.fps,
                               detect_width=dw, rotate=s.rotate)

        source = ResilientSource(reopen, stop, s.reconnect_max_s, on_wait,
                                 hours=Hours.parse(s.hours))
    source.open()
    log.info("source: %s", source.name)

    def on_signal(signum, _frame):
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    names, words = parse_names(cfg.board.label_names), parse_words(cfg.board.words)
    if not cfg.output.headless:
        from fer_pi.board.display import DisplayError, PygameDisplay

        b = cfg.board
        display = PygameDisplay(classifier.info.labels, b.fullscreen,
                                (b.window_width, b.window_height), b.overlay,
                                cfg.detect.max_faces, b.max_fps, b.mirror, b.privacy,
                                b.rotate, names, words, retry_s=b.screen_retry_s)
        try:
            display.open()
        except DisplayError as exc:
            source.close()
            print(f"fer-pi: display error: {exc}", file=sys.stderr)
            return EXIT_DISPLAY
    if cfg.output.save_frames:
        sinks.append(_frame_saver(Path(cfg.output.save_frames), classifier.info.labels,
                                   cfg.board.privacy, names, words))
    if demo and cfg.output.headless:
        sinks.append(_demo_printer())

    pacer = IdlePacer(s.idle_fps, s.idle_after_s) if s.camera and s.idle_fps else None

    def after(result, stats) -> None:
        if not stats_ref:
            stats_ref.append(stats)
        state.camera_state = "running"
        if tv is not None:
            tv.follow("running")  # the hours began: the screen on again
        state.idle = pacer is not None and pacer.idle
        state.screen = display.state if display is not None else "none"
        state.camera_reconnects = getattr(source, "reconnects", 0)
        state.corrupt_frames = source.corrupt_frames
        if display is not None:
            display.status, display.night = "", False
        notifier.frame_done(stats.fps, len(result.faces))
        state.update(stats.fps, len(result.faces), stats.frames, stats.mean_ms(),
                     room_summary(result.faces, classifier.info.labels))
        health.maybe_write()
        if publisher is not None:
            publisher.on_frame(result)

    try:
        stats = run(source, pipeline, sinks, display.show if display else None, stop,
                    cfg.output.max_frames, after=[after],
                    pace=paced(pacer, stop, display.handle_events if display else None)
                    if pacer else None)
    finally:
        notifier.stopping()
        source.close()
        if writer:
            writer.close()
        if display:
            display.close()
        state.camera_state = "ended"
        if publisher is not None:
            publisher.close()
        if status_server is not None:
            status_server.close()
    state.update(stats.fps, 0, stats.frames, stats.mean_ms(),
                 room_summary((), classifier.info.labels))
    health.maybe_write(force=True)
    ms = stats.mean_ms()
    print(f"fer-pi: {stats.frames} frames, {stats.faces} faces, "
          f"{1000.0 / ms['total'] if ms.get('total') else 0:.1f} FPS "
          f"(detect {ms.get('detect', 0):.1f} ms, infer {ms.get('infer', 0):.2f} ms per frame)"
          + (f"; results in {writer.path}" if writer else ""), file=sys.stderr)
    return EXIT_OK


def _frame_saver(folder: Path, labels: tuple[str, ...], privacy: str = "off",
                 names: dict[str, str] | None = None, words: dict[str, str] | None = None):
    """Annotated PNGs, drawn by the same board code, off-screen, with the board's privacy
    (never its mirror: a record keeps camera coordinates)."""
    import pygame

    from fer_pi.board.paint import Board, BoardStats

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror}") from None
    board = Board(labels, privacy=privacy, names=names, words=words)
    surface = pygame.Surface((1280, 720))

    def save(result) -> None:
        board.draw(surface, result, BoardStats(), overlay=False)
        pygame.image.save(surface, str(folder / f"frame_{result.frame.index:06d}.png"))

    return save


def _demo_printer():
    """Headless demo: a line a second of clip time, so a person sees it working."""
    def show(result) -> None:
        if result.frame.index % 30 == 0:
            faces = ", ".join(
                (f"#{f.track_id} " if f.track_id is not None else "")
                + f"{f.shown_label} ({f.prediction.label} {f.prediction.confidence:.0%}"
                " this frame)" for f in result.faces) or "no face"
            print(f"frame {result.frame.index:4d}  t={result.frame.timestamp:5.2f}s  {faces}",
                  flush=True)
    return show


if __name__ == "__main__":
    sys.exit(main())

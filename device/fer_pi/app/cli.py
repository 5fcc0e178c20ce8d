"""fer-pi: the command line. Reads the settings, hands them to the App (app.py), and turns
an expected failure into one line and its exit code.

Exit codes: 0 done (source ended, q/Esc, SIGINT/SIGTERM); 1 unexpected error;
2 bad command line or config; 3 source cannot be opened; 4 model unusable;
5 output cannot be written; 6 display cannot be opened.
"""

from __future__ import annotations

import argparse
import logging
import sys

from fer_pi import __version__
from fer_pi.app import config as cfgmod
from fer_pi.outputs.results import NotAppendable, OutputError
from fer_pi.sources import SourceError
from fer_pi.vision.detect import DetectorError
from fer_pi.vision.modelfile import ModelError

log = logging.getLogger("fer_pi")

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_SOURCE, EXIT_MODEL, EXIT_OUTPUT, EXIT_DISPLAY = range(7)


def expected_errors() -> list[tuple[type[Exception], str, int]]:
    """Failures a user can fix: one line naming the problem, and the exit code documented
    below. Matched with isinstance, so a subclass of one of them gets its code too."""
    from fer_pi.board.display import DisplayError  # pygame: imported once a run starts

    return [(NotAppendable, "config error", EXIT_CONFIG),  # before OutputError: a subclass
            (ModelError, "model error", EXIT_MODEL), (SourceError, "source error", EXIT_SOURCE),
            (OutputError, "output error", EXIT_OUTPUT), (DisplayError, "display error",
                                                         EXIT_DISPLAY),
            (DetectorError, "detector error", EXIT_ERROR),
            (cfgmod.ConfigError, "config error", EXIT_CONFIG)]


EPILOG = """\
exit codes:
  0  finished: the source ended, q/Esc pressed, or SIGINT/SIGTERM/SIGHUP received
  1  unexpected error
  2  bad command line or configuration (the message names the key), or an output file
     that is not fer-pi results to append to
  3  the camera, video, picture or image folder cannot be opened
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
    p.add_argument("--demo", action="store_true", help="run on a generated clip: in a "
                   "window when a display exists, headless otherwise")
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
    from fer_pi.sources.demo import cache_dir, demo_clip

    clip = cache_dir() / "demo-v2.avi"  # bump when demo.demo_placements changes
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
    except RuntimeError as exc:  # demo without its photo
        print(f"fer-pi: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.print_config:
        print(cfgmod.to_toml(cfg))
        return EXIT_OK
    try:
        return run(cfg, check_only=args.check_config, demo=args.demo)
    except Exception as exc:
        for cls, what, code in expected_errors():
            if isinstance(exc, cls):
                print(f"fer-pi: {what}: {exc}", file=sys.stderr)
                return code
        raise


def run(cfg: cfgmod.Config, check_only: bool = False, demo: bool = False) -> int:
    from fer_pi.app.app import App

    app = App(cfg, demo=demo)  # the model and pipeline: a bad one is refused here
    if check_only:
        print(f"config OK; detector {cfg.detect.detector}; model {app.classifier.info.name} "
              f"({app.model_path}), runtime {app.classifier.runtime}")
        return EXIT_OK
    if not (cfg.source.camera or cfg.source.video or cfg.source.images):
        print("fer-pi: config error: no source: give --camera N, --camera picam, --video PATH, "
              "--images DIR or --demo", file=sys.stderr)
        return EXIT_CONFIG
    app.run()
    print(app.summary_line(), file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

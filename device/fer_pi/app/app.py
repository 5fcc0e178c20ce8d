"""The composition root: one App builds every piece from the settings, starts them in order
inside one ExitStack, runs the loop, and stops whatever started, in reverse order, on every
path (a camera that will not open, a screen that is not there, SIGTERM, a crash).

Errors that end a run (SourceError, DisplayError, OutputError, ModelError, ConfigError)
propagate to the CLI, which turns them into one line and an exit code.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import ExitStack
from pathlib import Path

from fer_pi.app import config as cfgmod
from fer_pi.app.assemble import build, still_config
from fer_pi.app.loop import run
from fer_pi.app.services import Health, LoopFacts, Mqtt, Room, Screen, Service, Systemd, TvPower
from fer_pi.core.labels import parse_names
from fer_pi.core.records import Wait
from fer_pi.core.settings import read_secret
from fer_pi.core.stats import RunStats
from fer_pi.core.words import parse_words
from fer_pi.outputs.health import HealthState, HealthWriter
from fer_pi.outputs.notify import Notifier
from fer_pi.outputs.results import OutputError
from fer_pi.vision.classify import Classifier
from fer_pi.vision.detect import scan_width
from fer_pi.vision.modelfile import resolve_model
from fer_pi.vision.pipeline import Pipeline

log = logging.getLogger("fer_pi")


class App:
    """fer-pi, built from its settings. ``run()`` once; the model and pipeline are built
    (and checked) when the App is made."""

    def __init__(self, cfg: cfgmod.Config, demo: bool = False):
        if cfg.source.images:
            cfg = still_config(cfg)  # unrelated pictures: each stands alone
        self.cfg, self.demo = cfg, demo
        self.model_path = resolve_model(cfg.model.path)
        self.classifier = Classifier(self.model_path, threads=cfg.model.threads,
                                     flip_tta=cfg.model.flip_tta)
        self.labels = self.classifier.info.labels
        # a camera's frames: the whole-frame scan on its own thread (detect.scan_thread auto)
        self.pipeline: Pipeline = build(cfg, self.classifier, live=bool(cfg.source.camera))
        self.stop = threading.Event()
        self.state = HealthState(model=self.classifier.info.name,
                                 hours=cfg.source.hours if cfg.source.camera else "")
        self.health = Health(self.state, HealthWriter(cfg.health.state_file,
                                                      cfg.health.metrics_file,
                                                      cfg.health.interval_s, self.state),
                             self.labels)
        self.names, self.words = parse_names(cfg.board.label_names), parse_words(cfg.board.words)
        self.notifier = Notifier()
        self.services: list[Service] = []
        self.writer = self.source = self.display = None
        self.stats = RunStats()

    # -- the run ----------------------------------------------------------------------
    def run(self) -> RunStats:
        with ExitStack() as stack:
            sinks = self._start(stack)
            show = self.display.show if self.display is not None else None
            pacer = self._pacer()
            self.services.insert(0, LoopFacts(self.state, self.source, pacer, self.display))
            self.stats = run(self.source, self.pipeline, sinks, show, self.stop,
                             self.cfg.output.max_frames, after=[self._frame_done],
                             pace=pacer.wait_s if pacer else None, stats=self.stats,
                             waits=[self._wait],
                             poll=self.display.handle_events if self.display else None)
        self.health.finish(self.stats)
        return self.stats

    def _start(self, stack: ExitStack) -> list:
        """Everything, in the order it can fail soonest and costs least to undo; each piece
        is registered to stop as soon as it has started."""
        cfg, sinks = self.cfg, []
        stack.callback(self.pipeline.close)  # the scan thread, last of all
        o = cfg.output
        if o.path:
            from fer_pi.outputs.results import ResultWriter

            self.writer = ResultWriter(o.path, self.labels, o.interval_s, o.append, keep=o.keep,
                                       files=bool(cfg.source.images))
            stack.callback(self.writer.close)
            self.state.output = self.writer.status
            sinks.append(self.writer.write)
        self.source = self._open_source(stack)
        if not o.headless:
            from fer_pi.board.display import PygameDisplay

            self.display = PygameDisplay.from_config(self.labels, cfg.board, cfg.detect.max_faces,
                                                     self.names, self.words)
            stack.callback(self.display.close)
            self.display.open()
            self.services.append(Screen(self.display, self.stop))
        if cfg.board.cec_device and not o.headless:
            from fer_pi.board.tvpower import CecScreen

            tv = CecScreen(cfg.board.cec_device)
            stack.callback(tv.close)
            self.services.append(TvPower(tv))
        if o.annotate:
            sinks.append(self._annotator(stack))
        if o.save_frames:
            sinks.append(frame_saver(Path(o.save_frames), self.labels, cfg.board.privacy,
                                     self.names, self.words))
        if self.demo and o.headless:
            sinks.append(demo_printer())
        self.services += [Systemd(self.notifier), self.health]
        if cfg.status.enabled:
            from fer_pi.outputs.roomlog import RoomLog, RunLog
            from fer_pi.outputs.status import StatusServer

            token = (read_secret(cfg.status.token_file, "status.token_file")
                     if cfg.status.token_file else None)
            room = RoomLog(self.labels)
            runs = RunLog(runs_file(), room)
            runs.start()
            stack.push(runs.exit)
            self.services.append(Room(room))
            server = StatusServer(cfg.status.host, cfg.status.port, self.state, token=token,
                                  room=room)
            stack.callback(server.close)
            server.start()
        if cfg.mqtt.enabled:
            from fer_pi.outputs.mqtt import MqttPublisher

            publisher = MqttPublisher(cfg.mqtt, self.labels, self.state)  # no paho: exit 2
            stack.callback(publisher.close)
            publisher.start()
            self.services.append(Mqtt(publisher, self.state, self.labels))
        stack.callback(setattr, self.state, "camera_state", "ended")  # before MQTT's last word
        self._install_signals(stack)
        stack.callback(self.notifier.stopping)
        self.notifier.ready()  # set up: frames, or a deliberate wait, come next
        return sinks

    def _annotator(self, stack: ExitStack):
        """--annotate: the input marked up, a video at the source's own rate (a file's, or
        the camera's asked-for rate) or one picture per picture."""
        from fer_pi.board.annotate import annotate
        from fer_pi.outputs.annotated import AnnotatedPictures, AnnotatedVideo

        o, s, privacy = self.cfg.output, self.cfg.source, self.cfg.board.privacy
        if s.images:
            pictures = AnnotatedPictures(o.annotate)
            return lambda r: pictures.write(annotate(r, privacy, self.names),
                                            r.frame.file or f"frame_{r.frame.index:06d}")
        fps = getattr(getattr(self.source, "inner", None) or self.source, "fps", None)
        video = AnnotatedVideo(o.annotate, float(fps or s.fps))
        stack.callback(video.close)
        return lambda r: video.write(annotate(r, privacy, self.names))

    def _open_source(self, stack: ExitStack):
        from fer_pi.sources import Paced, ResilientSource, source_from_config
        from fer_pi.sources.hours import Hours

        s = self.cfg.source
        dw = scan_width(s.width, self.cfg.detect)  # the Pi camera's small detection stream
        if s.camera:
            source = ResilientSource(lambda: source_from_config(s, dw), self.stop,
                                     s.reconnect_max_s, hours=Hours.parse(s.hours))
        else:
            source = source_from_config(s, dw)
            if s.realtime:
                source = Paced(source, self.stop)
        stack.callback(source.close)  # a half-opened source lets go of what it holds
        source.open()
        log.info("source: %s", source.name)
        return source

    def _install_signals(self, stack: ExitStack) -> None:
        def on_signal(signum, _frame):
            log.info("signal %d: stopping", signum)
            self.stop.set()

        # SIGHUP (a closed terminal, an ssh session that dropped) stops the run as SIGTERM
        # does, with everything closed and written: fer-pi has no reload (systemctl
        # restart reads a changed config)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            stack.callback(signal.signal, sig, signal.signal(sig, on_signal))

    def _pacer(self):
        s = self.cfg.source
        if not (s.camera and s.idle_fps):
            return None
        from fer_pi.sources.idle import IdlePacer

        return IdlePacer(s.idle_fps, s.idle_after_s)

    # -- what the services hear ----------------------------------------------------------
    def _frame_done(self, result, stats: RunStats) -> None:
        for service in self.services:
            service.on_frame(result, stats)

    def _wait(self, wait: Wait, stats: RunStats) -> None:
        """The camera waits on purpose (a Wait from ResilientSource, at least once a
        second)."""
        for service in self.services:
            service.on_wait(wait, stats)

    def summary_line(self) -> str:
        ms = self.stats.mean_ms()
        return (f"fer-pi: {self.stats.frames} frames, {self.stats.faces} faces, "
                f"{1000.0 / ms['total'] if ms.get('total') else 0:.1f} FPS "
                f"(detect {ms.get('detect', 0):.1f} ms, infer {ms.get('infer', 0):.2f} ms per "
                "frame)" + (f"; results in {self.writer.path}" if self.writer else ""))


def runs_file() -> Path | None:
    """Where the room's page keeps fer-pi's runs across restarts: systemd's StateDirectory
    ($STATE_DIRECTORY, /var/lib/fer-pi in the unit); none by hand (this run only)."""
    folder = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(folder) / "runs.json" if folder else None


def frame_saver(folder: Path, labels: tuple[str, ...], privacy: str = "off",
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
    failed = [0]

    def save(result) -> None:
        board.draw(surface, result, BoardStats(), overlay=False)
        path = folder / f"frame_{result.frame.index:06d}.png"
        try:
            write_surface(path, surface)
        except OSError as exc:  # a full disk: the frame is not saved, the run goes on
            failed[0] += 1
            if failed[0] == 1 or failed[0] % 100 == 0:
                log.error("cannot save %s (%s); %d frame(s) not saved, the run goes on",
                          path, exc.strerror or exc, failed[0])

    return save


def write_surface(path: Path, surface) -> None:
    """A board drawn off-screen, as a PNG written whole or not at all: a full disk leaves no
    empty or cut picture behind."""
    import numpy as np
    import pygame

    from fer_pi.outputs.annotated import write_png

    rgb = np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(
        surface.get_height(), surface.get_width(), 3)
    write_png(path, np.ascontiguousarray(rgb[:, :, ::-1]))


def demo_printer():
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

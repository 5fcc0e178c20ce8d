"""Settings: one declaration per key gives the default, type, bounds, help and CLI flag.

The TOML file, the command line, ``--help``, ``--print-config`` and docs/settings.md's
table all come from the dataclasses below. Unknown keys, wrong types and
out-of-range values are refused with the key's name before anything starts.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fer_pi.core.constants import PRIVACY, ROTATIONS
from fer_pi.core.labels import parse_names
from fer_pi.core.settings import ConfigError, read_secret, setting
from fer_pi.core.words import parse_words
from fer_pi.outputs.mqtt import MqttConfig
from fer_pi.sources.hours import Hours
from fer_pi.vision.smooth import SmoothSettings as _S


@dataclass(frozen=True)
class SourceConfig:
    camera: str = setting("", "camera: a V4L2/USB index (0, 1, ...), or 'picam' for the Pi "
                          "camera ('picam1': a Pi 5's second)", flag="--camera")
    video: str = setting("", "a recorded video file instead of a camera", flag="--video")
    images: str = setting("", "a picture, or a folder of pictures, instead of a camera: each "
                          "picture stands alone (no tracking or smoothing across them) and "
                          "its records name its file", flag="--images")
    loop: bool = setting(False, "replay the video or images forever", flag="--loop",
                         flag_value=True)
    realtime: bool = setting(False, "play a video (or pictures) at its own frame rate, as a "
                             "camera gives frames, instead of as fast as it decodes: a kiosk "
                             "looping a clip, a page watching a replayed room",
                             flag="--realtime", flag_value=True)
    width: int = setting(640, "capture width in pixels", 64, 4096, flag="--width")
    height: int = setting(480, "capture height in pixels", 48, 4096, flag="--height")
    fps: int = setting(30, "requested camera frame rate", 1, 120, flag="--fps")
    rotate: int = setting(0, "turn the camera's picture clockwise by this many degrees: for a "
                          "camera mounted upside down (180) or on its side; faces must be "
                          "upright to be found", choices=ROTATIONS,
                          flag="--camera-rotate")
    hours: str = setting("", "with a camera: when it may watch, local time: '08:00-18:00' "
                         "(several: '08:00-12:00,13:00-17:00'; across midnight: "
                         "'22:00-06:00'; on some days: 'Mon-Fri 08:00-18:00, Sat "
                         "10:00-14:00'); outside them the camera is closed and the board "
                         "says when it opens (empty: always)", flag="--hours")
    idle_fps: float = setting(0.0, "with a camera: after idle_after_s without a face, read and "
                              "process only this many frames a second until a face appears, "
                              "for a cooler Pi in an empty room (0: always full rate)", 0.0,
                              30.0, flag="--idle-fps")
    idle_after_s: float = setting(30.0, "seconds without a face before idle_fps applies", 1.0,
                                  86400.0)
    reconnect_max_s: float = setting(10.0, "longest wait between attempts to reopen a lost "
                                     "camera, seconds (backoff starts at 0.5 s)", 0.5, 600.0)


@dataclass(frozen=True)
class DetectConfig:
    detector: str = setting("haar", "the face detector: 'haar' (OpenCV's cascade: upright "
                            "faces) or 'yunet' (OpenCV's learned YuNet, shipped with fer-pi: "
                            "finds heads tilted by 35 degrees and turned, and its landmarks "
                            "turn each face upright for the model; docs/detection.md)",
                            choices=("haar", "yunet"), flag="--detector")
    yunet_score: float = setting(0.6, "YuNet: the score a face needs (higher: fewer false "
                                 "faces, fewer faces found)", 0.05, 0.99)
    yunet_nms: float = setting(0.3, "YuNet: boxes overlapping more than this are one face",
                               0.05, 0.95)
    yunet_model: str = setting("", "YuNet: its ONNX file (empty: the one shipped inside fer-pi)")
    verify: str = setting("auto", "a second detector checks each new face before it is shown: "
                          "'auto' (on for haar, the other cascade; off for yunet, whose new "
                          "faces a cascade would refuse when tilted), 'on', 'off'",
                          choices=("auto", "on", "off"))
    scale_factor: float = setting(1.1, "Haar scale step between pyramid levels", 1.01, 2.0,
                                  flag="--scale-factor")
    min_neighbors: int = setting(5, "Haar neighbours needed to keep a face (higher: fewer "
                                 "false faces)", 0, 50, flag="--min-neighbors")
    min_size: int = setting(32, "smallest face, in frame pixels (also how far the frame is "
                            "shrunk before a scan, with detect_width -1)", 16, 4096,
                            flag="--min-size")
    max_size: int = setting(0, "largest face, in frame pixels (0: no limit); a limit drops "
                            "giant false faces on plain walls and saves detection time",
                            0, 8192, flag="--max-size")
    max_faces: int = setting(8, "most faces classified and shown per frame (largest first)",
                             1, 64, flag="--max-faces")
    detect_width: int = setting(-1, "scan for faces on a copy scaled down to this width (-1: "
                                "as small as detect.min_size allows, a face of min_size "
                                "pixels just filling the cascade's 24-pixel window; 0: full "
                                "size); the crops still come from the full frame", -1, 4096,
                                flag="--detect-width")
    cascade: str = setting("frontalface_alt2", "OpenCV's Haar cascade that scans for faces "
                           "(the other one checks each new face): frontalface_alt2 (on "
                           "composed scenes 9 times fewer false faces than frontalface_default "
                           "and as many found), or frontalface_default",
                           choices=("frontalface_default", "frontalface_alt2"))
    scan_every: int = setting(3, "scan for new faces every N frames; in between each face "
                              "already found is found again in a small window around it (a "
                              "fraction of a scan's cost). With full_scan_s most scans look "
                              "only where the picture changed, so they can come often: a face "
                              "lost for a moment is found again sooner (moving-faces clips on "
                              "one core: recall 0.942 at 6, 0.954 at 3)", 1, 300,
                              flag="--scan-every")
    full_scan_s: float = setting(2.0, "between whole-frame scans this many seconds apart, a "
                                 "scan looks only where the picture changed, away from the "
                                 "faces already followed (a still room costs almost nothing; "
                                 "a face that came in without moving waits for the next whole "
                                 "scan). 0: every scan is of the whole frame", 0.0, 60.0,
                                 flag="--full-scan-s")
    confirm_frames: int = setting(3, "a new face is shown (board, results, MQTT) only once it "
                                  "was found in this many frames: a false face seen once "
                                  "never reaches them", 1, 30, flag="--confirm-frames")
    scan_thread: str = setting("auto", "run the whole-frame scan on a thread of its own, so a "
                               "slow scan never stalls the board or the camera: 'auto' for "
                               "cameras (not for files, whose results stay the same run after "
                               "run), 'on', 'off'", choices=("auto", "on", "off"))
    margin: float = setting(-1.0, "crop margin around the face box, fraction of its size on "
                            "each side (-1: the model's own, from its metadata: how its "
                            "training faces were framed)", -1.0, 1.0)
    equalize: str = setting("model", "histogram-equalise each face crop before the model: "
                            "'model' as its metadata says (as its training faces were), 'on' "
                            "or 'off'", choices=("model", "on", "off"))


@dataclass(frozen=True)
class ModelConfig:
    path: str = setting("default", "a shipped model's name (default, or one that "
                        "--list-models shows) or a .tflite path",
                        flag="--model")
    threads: int = setting(2, "TFLite interpreter threads", 1, 16, flag="--threads")
    flip_tta: bool = setting(True, "also classify the mirrored face and average (int8 on "
                             "PublicTest: +1.5 points for vgg, +1.1 for seed; twice the "
                             "inference time)",
                             flag="--no-flip-tta", flag_value=False)


@dataclass(frozen=True)
class ClassifyConfig:
    max_hz: float = setting(15.0, "classify each tracked face at most this many times a second "
                            "(a new face at once; its last reading and shown label carried in "
                            "between). Fewer readings mean fewer for the smoother: on the onset "
                            "development set the shown label lost accuracy below about 8, and "
                            "on a clip with hands over mouths 10 let the label change up to 8 "
                            "times where every frame changed it twice and 15 at most 4 "
                            "(docs/performance.md). 0: every face on every frame",
                            0.0, 120.0, flag="--classify-hz")


@dataclass(frozen=True)
class BoardConfig:
    fullscreen: bool = setting(True, "fullscreen board (false: a window)", flag="--windowed",
                               flag_value=False)
    window_width: int = setting(1280, "window width when not fullscreen", 320, 7680)
    window_height: int = setting(720, "window height when not fullscreen", 240, 4320)
    overlay: bool = setting(True, "show the FPS/latency overlay (key d toggles)",
                            flag="--no-overlay", flag_value=False)
    max_fps: int = setting(60, "cap on board redraws per second", 1, 240)
    mirror: bool = setting(False, "show the picture mirrored, as people in front of the screen "
                           "expect (key m toggles); results keep camera coordinates",
                           flag="--mirror", flag_value=True)
    rotate: int = setting(0, "turn the board clockwise by this many degrees: for a screen "
                          "mounted on its side, or the Pi Touch Display 2 (portrait on the "
                          "console, where SDL ignores the kernel's rotate=)",
                          choices=ROTATIONS, flag="--rotate")
    privacy: str = setting("off", "faces on the board: 'off' as the camera sees them, "
                           "'pixelate' each face in the picture and on its card, 'no_picture' "
                           "no camera picture at all (boxes and labels on a plain background)",
                           choices=PRIVACY, flag="--privacy")
    words: str = setting("", "the board's other words in the room's language, | between them "
                         "(keys: no_faces, one_face, faces, held, closed, camera_lost, days): "
                         "'no_faces=keine Gesichter im Bild | one_face=1 Gesicht | faces={n} "
                         "Gesichter | held=seit {s} s | closed=geschlossen bis {time} | "
                         "camera_lost=Kamera getrennt, neuer Versuch in {s} s | days=Mo Di Mi "
                         "Do Fr Sa So'", flag="--words")
    cec_device: str = setting("", "turn the screen off (HDMI-CEC standby) while the camera is "
                              "closed outside source.hours and on when they begin: the CEC "
                              "device, '/dev/cec0' for a Pi's first HDMI port (needs cec-ctl: "
                              "apt install v4l-utils); empty: leave the screen alone",
                              flag="--cec-device")
    screen_retry_s: float = setting(0.0, "when the screen cannot be opened (off or unplugged at "
                                    "boot): 0 exits with code 6; N > 0 runs without the board "
                                    "(results, MQTT, health go on) and tries again every N s",
                                    0.0, 3600.0, flag="--screen-retry")
    label_names: str = setting("", "the board's words for the labels, in the room's language: "
                               "'happy=fröhlich,sad=traurig,uncertain=unsicher' (results, MQTT "
                               "and the status endpoint keep the model's labels)",
                               flag="--label-names")


@dataclass(frozen=True)
class OutputConfig:
    headless: bool = setting(False, "no screen: run the pipeline and write results only",
                             flag="--headless", flag_value=True)
    path: str = setting("", "per-frame, per-face results: .jsonl or .csv; strftime fields "
                        "(results-%Y-%m-%d.jsonl) start a new file each day", flag="--output")
    interval_s: float = setting(0.0, "write one frame's record per this many seconds (0: "
                                "every frame; 1 makes a day of one face about 35 MB of JSONL)",
                                0.0, 3600.0, flag="--output-interval")
    append: bool = setting(False, "append to an existing results file instead of replacing "
                           "it (always so for a path with strftime fields)")
    keep: int = setting(0, "with strftime fields in the path: keep only the newest this many "
                        "files, deleting older ones as a new one starts (0: keep all)",
                        0, 100000, flag="--output-keep")
    max_frames: int = setting(0, "stop after this many frames (0: run until the source ends)",
                              0, 10**9, flag="--max-frames")
    save_frames: str = setting("", "also write each frame of the whole board as PNG into "
                               "this folder", flag="--save-frames")
    annotate: str = setting("", "also write a marked-up copy of the input: each face's box "
                            "and shown label drawn on the picture (board.privacy applies); a "
                            "video (.mp4, .avi, ...) at the input's frame rate and size, or "
                            "with --images a folder of one PNG per picture", flag="--annotate")


@dataclass(frozen=True)
class TrackConfig:
    enabled: bool = setting(True, "give each face an ID that persists while it is in view",
                            flag="--no-track", flag_value=False)
    detect_every: int = setting(2, "find each known face again every N frames; in between "
                                "the tracker predicts its box (3 costs a fifth less CPU, but "
                                "on moving-faces clips on one core as a camera it broke a "
                                "face's track 25 times where 2 broke it 3)", 1, 30,
                                flag="--detect-every")
    max_missed: int = setting(60, "frames a face may go unseen (behind another one walking "
                              "past) and keep its ID", 0, 300)
    max_distance: float = setting(2.0, "largest jump between sightings, in face widths, that "
                                  "still counts as the same face", 0.1, 5.0)


@dataclass(frozen=True)
class SmoothConfig:  # the defaults are the smoother's own (fer_tools.flicker measures them)
    enabled: bool = setting(True, "average each face's probabilities over time, with "
                            "hysteresis on the shown label (needs tracking)", flag="--no-smooth",
                            flag_value=False)
    tau_s: float = setting(_S.tau_s, "time constant of each face's running average, seconds: "
                           "a frame dt seconds after the last weighs 1 - exp(-dt/tau), so the "
                           "board follows a face alike at 10 FPS and at 60 (0: no averaging)",
                           0.0, 10.0)
    margin: float = setting(_S.margin, "a new label must lead the shown one by this much ...",
                            0.0, 1.0)
    hold_s: float = setting(_S.hold_s, "... for this many seconds before it is shown (0: at "
                            "once)", 0.0, 10.0)
    uncertain_lead: float = setting(
        _S.uncertain_lead, "show 'uncertain' when the average's most probable label leads the "
        "next one by less than this (0: never, the default: on the onset development set a "
        "small lead still meant a label right on 35-40 % of frames, so hiding it cost "
        "accuracy; docs/steadiness.md has the curve)", 0.0, 1.0)
    uncertain_band: float = setting(
        _S.uncertain_band, "... and a label is shown again only once it leads by this much more "
        "(hysteresis: a lead near the threshold does not take the label in and out of "
        "'uncertain')", 0.0, 0.5)

    def settings(self) -> _S:
        """The smoother's settings: the same names, so a knob added to both needs no copy."""
        return _S(**{f.name: getattr(self, f.name) for f in fields(_S)})


@dataclass(frozen=True)
class HealthConfig:
    state_file: str = setting("", "JSON health state written at an interval (empty: off)",
                              flag="--health-file")
    metrics_file: str = setting("", "Prometheus textfile metrics (.prom) written at an "
                                "interval (empty: off)", flag="--metrics-file")
    interval_s: float = setting(10.0, "seconds between health writes", 0.5, 3600.0)


@dataclass(frozen=True)
class StatusConfig:
    enabled: bool = setting(False, "serve GET /status (JSON) and GET /metrics (Prometheus) "
                            "over HTTP", flag="--status", flag_value=True)
    host: str = setting("127.0.0.1", "address to bind (0.0.0.0: every interface; set "
                        "token_file then)")
    port: int = setting(8787, "TCP port", 1, 65535, flag="--status-port")
    token_file: str = setting("", "file whose first line is a bearer token that every "
                              "request must send (Authorization: Bearer ...); empty: none")


# keys of earlier versions, refused with what replaced them (the smoother counts seconds
# now: the same settings must mean the same at 10 FPS and at 60)
RENAMED = {
    "smooth.alpha": "use smooth.tau_s, the average's time constant in seconds (alpha 0.3 a "
                    "frame at 30 FPS is about tau_s 0.09)",
    "smooth.hold_frames": "use smooth.hold_s, in seconds (6 frames at 30 FPS: 0.2)",
    "smooth.uncertain_below": "use smooth.uncertain_lead: 'uncertain' now follows the lead of "
                              "the most probable label over the next one",
}

# V4L2 numbers its devices /dev/video0 .. /dev/video255; OpenCV's own backends take less
MAX_CAMERA_INDEX = 255

SECTIONS = {"source": SourceConfig, "detect": DetectConfig, "model": ModelConfig,
            "classify": ClassifyConfig, "track": TrackConfig, "smooth": SmoothConfig, "board": BoardConfig,
            "output": OutputConfig, "health": HealthConfig, "mqtt": MqttConfig,
            "status": StatusConfig}


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    board: BoardConfig = field(default_factory=BoardConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    status: StatusConfig = field(default_factory=StatusConfig)


def _check(key: str, f, value: Any) -> Any:
    typ = f.type if isinstance(f.type, type) else {"str": str, "int": int, "float": float,
                                                   "bool": bool}[f.type]
    meta = f.metadata
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        value = float(value)
    elif typ is str and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and not (lo <= value <= hi):
        raise ConfigError(f"{key} = {value!r} is out of range ({lo} .. {hi})")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{key} = {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    return value


def from_dict(data: dict, base: Config | None = None) -> Config:
    """Validate a nested {section: {key: value}} mapping on top of ``base`` (defaults)."""
    cfg = base or Config()
    if not isinstance(data, dict):
        raise ConfigError("config must be a table of sections")
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        known = {f.name: f for f in fields(SECTIONS[section])}
        updates = {}
        for key, value in values.items():
            if f"{section}.{key}" in RENAMED:
                raise ConfigError(f"{section}.{key} is gone: {RENAMED[f'{section}.{key}']}")
            if key not in known:
                raise ConfigError(f"unknown key {section}.{key}; known: {', '.join(known)}")
            updates[key] = _check(f"{section}.{key}", known[key], value)
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **updates)})
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Rules that span keys."""
    chosen = [k for k in ("camera", "video", "images") if getattr(cfg.source, k)]
    if len(chosen) > 1:
        raise ConfigError(f"source: give one of camera, video, images, not {', '.join(chosen)}")
    cam = cfg.source.camera
    if cam and not re.fullmatch(r"\d{1,3}|picam\d?", cam) or (cam.isdigit() and
                                                                int(cam) > MAX_CAMERA_INDEX):
        raise ConfigError(f"source.camera = {cam!r}: use an index (0 .. {MAX_CAMERA_INDEX}: "
                          "/dev/video0 ...) or 'picam' ('picam1' for a Pi 5's second camera)")
    try:
        parse_names(cfg.board.label_names)
    except ValueError as exc:
        raise ConfigError(f"board.label_names: {exc}") from None
    try:
        parse_words(cfg.board.words)
    except ValueError as exc:
        raise ConfigError(f"board.words: {exc}") from None
    try:
        Hours.parse(cfg.source.hours)
    except ValueError as exc:
        raise ConfigError(f"source.hours = {cfg.source.hours!r}: {exc}") from None
    if cfg.board.cec_device:
        _validate_cec(cfg)
    if 0 < cfg.source.idle_fps < 0.2:
        raise ConfigError(f"source.idle_fps = {cfg.source.idle_fps}: 0 (off) or at least 0.2 "
                          "(a frame every 5 s keeps the systemd watchdog fed)")
    if 0 < cfg.classify.max_hz < 1:
        raise ConfigError(f"classify.max_hz = {cfg.classify.max_hz}: 0 (every frame) or 1 .. "
                          "120 (below once a second a label would trail a face by seconds)")
    if -1.0 < cfg.detect.margin < 0.0:
        raise ConfigError(f"detect.margin = {cfg.detect.margin}: -1 (the model's own) or "
                          "0 .. 1")
    if cfg.detect.max_size and cfg.detect.max_size < cfg.detect.min_size:
        raise ConfigError(f"detect.max_size = {cfg.detect.max_size} is below detect.min_size "
                          f"= {cfg.detect.min_size}")
    out = cfg.output.path
    if out and Path(out).suffix.lower() not in (".jsonl", ".csv"):
        raise ConfigError(f"output.path = {out!r}: must end in .jsonl or .csv")
    if cfg.output.keep and "%" not in out:
        raise ConfigError(f"output.keep = {cfg.output.keep} needs an output.path with strftime "
                          f"fields (results-%Y-%m-%d.jsonl), not {out!r}")
    if cfg.mqtt.enabled:
        _validate_mqtt(cfg.mqtt)
    _validate_host(cfg.status.host)
    if cfg.status.enabled and cfg.status.token_file:
        read_secret(cfg.status.token_file, "status.token_file")


def _validate_host(host: str) -> None:
    """status.host: an address this machine can bind (an IP, or a host name)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", host):
        raise ConfigError(f"status.host = {host!r}: not an IP address or a host name "
                          "(127.0.0.1, 0.0.0.0, ::1, pi.local)")


def _validate_cec(cfg: Config) -> None:
    dev = cfg.board.cec_device
    if not cfg.source.hours:
        raise ConfigError("board.cec_device turns the screen off outside source.hours: set "
                          "source.hours too")
    if not Path(dev).exists():
        raise ConfigError(f"board.cec_device = {dev!r}: no such device (ls /dev/cec*)")
    if shutil.which("cec-ctl") is None:
        raise ConfigError("board.cec_device: cec-ctl not found (sudo apt install v4l-utils)")


_TOPIC_PART = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def _validate_mqtt(m: MqttConfig) -> None:
    if not m.host.strip():
        raise ConfigError("mqtt.host is empty")
    for key in ("topic_prefix", "discovery_prefix"):
        if not _TOPIC_PART.match(getattr(m, key)):
            raise ConfigError(f"mqtt.{key} = {getattr(m, key)!r}: use letters, digits, '_', "
                              "'-', '.' and '/' between parts (no wildcards)")
    if m.device_id and not re.match(r"^[A-Za-z0-9_-]+$", m.device_id):
        raise ConfigError(f"mqtt.device_id = {m.device_id!r}: use letters, digits, '_' and '-'")
    if m.password and m.password_file:
        raise ConfigError("mqtt: give password or password_file, not both")
    if (m.password or m.password_file) and not m.username:
        raise ConfigError("mqtt: a password needs mqtt.username")
    if bool(m.cert_file) != bool(m.key_file):
        raise ConfigError("mqtt: cert_file and key_file go together")
    if m.password_file:
        read_secret(m.password_file, "mqtt.password_file")
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(m, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"mqtt.{key}: file not found: {path}")
    if (m.ca_file or m.cert_file) and not m.tls:
        raise ConfigError("mqtt: ca_file/cert_file are set but mqtt.tls is false")


def load_file(path: str | Path, base: Config | None = None) -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file unreadable: {path} ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file is not valid TOML: {path} ({exc})") from None
    try:
        return from_dict(data, base)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per setting that has a flag; help shows the default and bounds."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"[{section}] settings")
        for f in fields(cls):
            meta = f.metadata
            if not meta.get("flag"):
                continue
            dest = f"{section}.{f.name}"
            text = meta["help"].replace("%", "%%")  # argparse formats help with %
            if meta.get("lo") is not None:
                text += f" ({meta['lo']}..{meta['hi']})"
            if meta.get("flag_value") is not None:
                if meta["flag_value"] is False and f.default is True:
                    # --no-flip-tta, --windowed: the help says what the flag does, which is
                    # to turn the setting off
                    text = f"turn off {section}.{f.name} (on by default: {text})"
                group.add_argument(meta["flag"], dest=dest, action="store_const",
                                   const=meta["flag_value"], default=None, help=text)
            else:
                typ = f.type if isinstance(f.type, type) else eval(f.type)  # noqa: S307
                shown = f.default if f.default is not MISSING else ""
                group.add_argument(meta["flag"], dest=dest, type=typ, default=None,
                                   metavar=f.name.upper(), help=f"{text} [default: {shown!r}]")


def overrides_from_args(args: argparse.Namespace) -> dict:
    data: dict = {}
    for dest, value in vars(args).items():
        if "." in dest and value is not None:
            section, key = dest.split(".", 1)
            data.setdefault(section, {})[key] = value
    return data


def to_toml(cfg: Config) -> str:
    """The effective configuration as TOML that load_file reads back unchanged."""
    lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for f in fields(SECTIONS[section]):
            value = getattr(getattr(cfg, section), f.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = repr(value)
            lines.append(f"{f.name} = {text}  # {f.metadata['help']}")
        lines.append("")
    return "\n".join(lines)


def markdown_table() -> str:
    """docs/settings.md's table, generated so that docs and code cannot drift."""
    rows = ["| key | default | range | flag | meaning |", "|---|---|---|---|---|"]
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            m = f.metadata
            default = f.default
            shown = ("true" if default else "false") if isinstance(default, bool) else repr(default)
            rng = f"{m['lo']}..{m['hi']}" if m["lo"] is not None else ""
            flag = f"`{m['flag']}`" if m["flag"] else ""
            rows.append(f"| `{section}.{f.name}` | `{shown}` | {rng} | {flag} | {m['help']} |")
    return "\n".join(rows)

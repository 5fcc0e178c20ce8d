"""Find a model by name or path and read the metadata JSON that travels beside it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fer_pi.core.labels import LABELS
from fer_pi.vision.prepare import FacePrep

DEFAULT_MODEL = "vgg"
METADATA_FORMAT = "fer-pi-model/1"


class ModelError(Exception):
    """A model that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ModelInfo:
    """What the device needs to know about a model, all of it read from its files."""

    path: Path
    name: str
    labels: tuple[str, ...]
    # float input = pixel (0..255) * norm_scale + norm_offset, before int8 quantization
    norm_scale: float
    norm_offset: float
    metadata: dict
    # probabilities are sharpened (T < 1) or softened (T > 1) by this temperature so that a
    # face shown at 70 % is right about 70 % of the time (fer_tools.calibrate); 1: as is
    temperature: float = 1.0
    temperature_single: float = 1.0  # the same without flip TTA (one inference per face)
    # how a detected face must be cut and normalised for this model (input.face); a model
    # without it gets what fer-pi did before models said so
    face: FacePrep = FacePrep()
    # output.prior_correction: per-class factors the probabilities are multiplied by (then
    # renormalized) before the temperature; None: as the model says
    prior_factors: tuple[float, ...] | None = None


def models_dir() -> Path:
    return Path(str(resources.files("fer_pi.models")))


def shipped_models() -> dict[str, Path]:
    """Name → path for every shipped ``fer_<name>_int8.tflite``."""
    found = {}
    for p in sorted(models_dir().glob("fer_*_int8.tflite")):
        found[p.name[len("fer_"):-len("_int8.tflite")]] = p
    return found


def resolve_model(spec: str | None) -> Path:
    """A shipped model's name (``default``, or one of ``shipped_models()``) or a path to a
    .tflite file."""
    spec = spec or "default"
    if spec == "default":
        spec = DEFAULT_MODEL
    shipped = shipped_models()
    if spec in shipped:
        return shipped[spec]
    path = Path(spec).expanduser()
    if path.suffix != ".tflite" and not path.exists():
        names = ", ".join(shipped) or "none"
        raise ModelError(f"unknown model {spec!r}: not a shipped model ({names}) nor a file")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return path


def describe_shipped() -> list[str]:
    """One line per shipped model, for ``fer-pi --list-models``: what a user chooses by."""
    lines = []
    for name, path in shipped_models().items():
        try:
            meta = json.loads(metadata_path(path).read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        acc = meta.get("accuracy", {}).get("PublicTest", {})
        figures = (f"int8 {100 * acc['int8']:.2f} % (float {100 * acc['float']:.2f} %) on "
                   "PublicTest (validation)") if "int8" in acc and "float" in acc else "no accuracy"
        params = f"{meta['params']:,} parameters, " if "params" in meta else ""
        conf = meta.get("confidence", {})
        if "temperature" not in conf:
            calibrated = "; confidence as trained (not checked)"
        elif conf["temperature"] == 1:
            calibrated = "; confidence calibrated as trained (checked on PublicTest)"
        else:
            calibrated = f"; confidence calibrated (temperature {conf['temperature']:g})"
        lines.append(f"{name}{' (default)' if name == DEFAULT_MODEL else ''}: {params}"
                     f"{path.stat().st_size / 1e6:.2f} MB, {figures}{calibrated}")
    return lines


def metadata_path(model: Path) -> Path:
    return model.with_suffix(".json")


def read_model_info(model: Path) -> ModelInfo:
    """Labels and normalization from the metadata JSON; defaults when a user's model has none."""
    meta_file = metadata_path(model)
    meta: dict = {}
    if meta_file.is_file():
        try:
            text = meta_file.read_text(encoding="utf-8")
            meta = json.loads(text)
        except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError: a ValueError
            first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise ModelError(f"model metadata unreadable: {meta_file} ({first})") from None
        if not isinstance(meta, dict):
            raise ModelError(f"model metadata is not a JSON object: {meta_file}")

    def section(parent: dict, key: str, where: str) -> dict:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            raise ModelError(f"model metadata: {where} must be an object: {meta_file}")
        return value

    labels = meta.get("labels", LABELS)
    if (not isinstance(labels, list | tuple) or not labels
            or not all(isinstance(x, str) and x.strip() for x in labels)):
        raise ModelError(f"model metadata: 'labels' must be a list of names: {meta_file}")
    labels = tuple(labels)
    if len(set(labels)) != len(labels):
        raise ModelError(f"model metadata: 'labels' names a label twice: {meta_file}")
    inp = section(meta, "input", "input")
    norm = section(inp, "normalization", "input.normalization")
    try:
        scale = float(norm.get("scale", 1.0))
        offset = float(norm.get("offset", 0.0))
    except (TypeError, ValueError):
        raise ModelError(f"model metadata: bad input.normalization in {meta_file}") from None
    if not (math.isfinite(scale) and math.isfinite(offset)) or scale == 0:
        raise ModelError(f"model metadata: input.normalization must be finite numbers with a "
                         f"scale that is not 0: {meta_file}")
    temps = []
    conf = section(meta, "confidence", "confidence")
    for key in ("temperature", "temperature_single"):
        try:
            t = float(conf.get(key, temps[0] if temps else 1.0))
        except (AttributeError, TypeError, ValueError):
            t = -1.0
        if not 0.05 <= t <= 20:
            raise ModelError(f"model metadata: confidence.{key} must be a number in 0.05..20: "
                             f"{meta_file}")
        temps.append(t)
    try:
        face = FacePrep.from_metadata(section(inp, "face", "input.face"))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"model metadata: {exc}: {meta_file}") from None
    factors = None
    corr = meta.get("output", {}).get("prior_correction") if isinstance(meta.get("output"),
                                                                         dict) else None
    if corr is not None:
        try:
            factors = tuple(float(f) for f in corr["factors"])
        except (KeyError, TypeError, ValueError):
            factors = ()
        if len(factors) != len(labels) or not all(0 < f < 1e6 for f in factors):
            raise ModelError("model metadata: output.prior_correction.factors must be one "
                             f"positive number per label: {meta_file}")
    return ModelInfo(model, str(meta.get("name", model.stem)), labels, scale, offset, meta,
                     *temps, face=face, prior_factors=factors)

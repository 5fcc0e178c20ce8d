"""fer-convert: a Keras model → a full-integer int8 TFLite model plus its metadata JSON.

Path: model.export(SavedModel) → TFLiteConverter.from_saved_model, because
from_keras_model fails on Keras 3 models with TF 2.21 (shared NOTES). The float
and int8 accuracies are both measured on PublicTest (the validation split).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from fer_pi.core.labels import LABELS
from fer_pi.vision.modelfile import METADATA_FORMAT
from fer_tools.cliutil import main_wrapper, need_module
from fer_tools.data import DataError, file_sha256, load_split, stratified_subset
from fer_tools.gitinfo import git_commit
from fer_tools.portable import portable

EXIT_REFUSED = 3


class ConvertError(Exception):
    pass


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fer-convert",
        description="Convert a Keras model (.keras, .h5 or SavedModel folder) with a 48x48x1 "
        "input and 7 softmax outputs to a full-integer int8 TFLite model, calibrated on "
        "Training, with a metadata JSON and float-vs-int8 PublicTest accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="Keras model file or SavedModel folder")
    p.add_argument("--out", help="output .tflite (default: models/fer_<name>_int8.tflite "
                   "in the current folder)")
    p.add_argument("--name", help="model name in the metadata (default: the model's own)")
    p.add_argument("--data", default=None, help="FER2013 folder (default: $FER_DATA or "
                   "../shared/data/fer2013)")
    p.add_argument("--calibration", type=int, default=1000, help="Training images used to "
                   "calibrate the int8 ranges (stratified sample)")
    p.add_argument("--io", choices=["int8", "uint8"], default="int8", help="input/output type")
    p.add_argument("--input-scale", type=float, default=1.0, help="the model's input is "
                   "pixel*scale+offset (1, 0 for models that rescale inside, as fer-train's do)")
    p.add_argument("--input-offset", type=float, default=0.0)
    p.add_argument("--max-drop", type=float, default=1.0, help="refuse when int8 accuracy is "
                   "more than this many points below float")
    p.add_argument("--accept", action="store_true", help="write the model even past --max-drop")
    p.add_argument("--limit-eval", type=int, default=0, help="score on only N PublicTest "
                   "images (smoke runs)")
    p.add_argument("--prior-power", type=float, default=0.0, help="divide the model's "
                   "probabilities by Training's class shares to this power (0.5: halfway to "
                   "even classes; 0: off); recorded in the metadata, applied by the device")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def check_model(model) -> int:
    """Shape checks with the message a user can act on; returns the parameter count."""
    try:
        in_shape = tuple(model.inputs[0].shape)
        out_shape = tuple(model.outputs[0].shape)
    except (AttributeError, IndexError):
        raise ConvertError("not a Keras model with one input and one output") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConvertError(f"model must have one input and one output, has "
                           f"{len(model.inputs)} and {len(model.outputs)}")
    if in_shape[1:] != (48, 48, 1):
        raise ConvertError(f"model input must be 48x48x1 grayscale, is {in_shape[1:]}")
    if out_shape[1:] != (7,):
        raise ConvertError(f"model must have 7 outputs (FER2013 classes), has {out_shape[1:]}")
    return int(model.count_params())


def count_macs(model) -> int:
    """Multiply-accumulates of one inference: convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            out = layer.output.shape
            spatial = int(out[1] * out[2]) if len(out) == 4 else 1
            kernel = layer.get_weights()[0]
            if kind == "DepthwiseConv2D":
                total += spatial * int(kernel.size)
            elif kind == "SeparableConv2D":
                total += spatial * (int(kernel.size) + int(layer.get_weights()[1].size))
            else:
                total += spatial * int(kernel.size)
        elif hasattr(layer, "layers"):
            total += count_macs(layer)
    return total


def float32_model(model):
    """A mixed-precision model rebuilt in float32, so the converter sees no casts."""
    import keras

    policies = {getattr(layer.dtype_policy, "name", "float32") for layer in model.layers}
    if policies <= {"float32"}:
        return model
    cfg = model.get_config()
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        def strip(obj):
            if isinstance(obj, dict):
                return {k: ("float32" if k == "dtype" and not isinstance(v, str | type(None))
                            and "mixed" in json.dumps(v) else strip(v)) for k, v in obj.items()}
            if isinstance(obj, list):
                return [strip(v) for v in obj]
            return "float32" if obj in ("mixed_bfloat16", "mixed_float16") else obj
        clone = model.__class__.from_config(strip(cfg))
        clone.set_weights(model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return clone


def load_model(path: Path):
    from fer_tools.predict import load_keras

    if not path.exists():
        raise ConvertError(f"model not found: {path}")
    if path.is_file() and path.suffix not in (".keras", ".h5"):
        raise ConvertError(f"not a Keras model (.keras, .h5 or a SavedModel folder): {path}")
    try:
        return load_keras(path)
    except Exception as exc:  # Keras raises many types for a bad file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConvertError(f"not a readable Keras model: {path} ({first})") from None


def convert(model, calib: np.ndarray, io: str, scale: float, offset: float) -> bytes:
    import tensorflow as tf

    def representative():
        for img in calib:
            yield [(img[None, :, :, None].astype(np.float32) * scale + offset)]

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8 if io == "int8" else tf.uint8
        converter.inference_output_type = tf.int8 if io == "int8" else tf.uint8
        return converter.convert()


def _tensor_quant(path: Path) -> dict:
    from fer_pi.vision.classify import load_interpreter_class

    _, cls = load_interpreter_class()
    it = cls(model_path=str(path))
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    return {
        "input": {"dtype": np.dtype(i["dtype"]).name, "shape": [int(s) for s in i["shape"]],
                  "scale": float(i["quantization"][0]), "zero_point": int(i["quantization"][1])},
        "output": {"dtype": np.dtype(o["dtype"]).name, "shape": [int(s) for s in o["shape"]],
                   "scale": float(o["quantization"][0]), "zero_point": int(o["quantization"][1])},
    }


def prior_correction(train_y: np.ndarray, power: float) -> dict | None:
    """output.prior_correction: factors (Training's class share)^-power, scaled to mean 1.
    FER2013's web images are 25 % happy and 1.5 % disgusted; a room is not. The device
    multiplies the probabilities by them (then renormalizes) before the temperature."""
    if not power:
        return None
    counts = np.bincount(train_y, minlength=len(LABELS)).astype(np.float64)
    share = counts / counts.sum()
    f = np.where(share > 0, np.maximum(share, 1e-9) ** -power, 0.0)
    f = f / f.mean()
    return {"power": power, "train_share": [round(float(x), 5) for x in share],
            "factors": [round(float(x), 6) for x in f],
            "meaning": "probabilities * factors, renormalized, before the temperature"}


def face_metadata(recipe: dict, train_x: np.ndarray) -> dict:
    """How the device must cut a face for this model (fer_pi.vision.prepare.FacePrep): what the
    trainer prepared its faces with (a camera-simulating run records it), else FER2013's
    own framing, measured here as the trainer measures it."""
    from fer_tools.camaug import measure_framing

    framing = recipe.get("face") or measure_framing(train_x, seed=int(recipe.get("seed", 0)))
    return {**framing["prep"],
            "detector": "OpenCV Haar haarcascade_frontalface_default (fer_pi.vision.detect)",
            "framing": {k: v for k, v in framing.items() if k != "prep"},
            "trained_on": "camera views (fer_tools.camaug)" if recipe.get("camera")
            else "FER2013 faces as they are (histogram-equalised, Haar-like framing)",
            "meaning": "crop side = detector box side * crop_scale, centred crop_shift_y box "
                       "sides below the box centre; then histogram-equalised if equalize"}


def run(args: argparse.Namespace) -> int:
    need_module("tensorflow", "converting a Keras model to TFLite")
    src = Path(args.model)
    train = load_split(args.data, "Training")
    val = load_split(args.data, "PublicTest")
    model = load_model(src)
    params = check_model(model)
    model = float32_model(model)
    name = args.name or model.name or src.stem
    out = Path(args.out) if args.out else Path("models") / f"fer_{name}_int8.tflite"
    if out.suffix != ".tflite":
        raise ConvertError(f"--out must end in .tflite: {out}")

    # probabilities, not logits: the device and the board read them as such
    from fer_tools.predict import predict_keras, predict_tflite

    probe = predict_keras(model, val.x[:64], scale=args.input_scale, offset=args.input_offset)
    if not np.allclose(probe.sum(1), 1.0, atol=1e-2) or probe.min() < -1e-6:
        raise ConvertError("model outputs are not softmax probabilities (rows must sum to 1)")

    calib_idx = stratified_subset(train.y, args.calibration, args.seed)
    print(f"converting {src} ({params:,} parameters) with {len(calib_idx)} calibration images",
          flush=True)
    tflite = convert(model, train.x[calib_idx], args.io, args.input_scale, args.input_offset)

    ev = val
    if args.limit_eval:
        idx = stratified_subset(val.y, args.limit_eval, args.seed)
        ev = type(val)(val.name, val.x[idx], val.y[idx], val.path)
    correction = prior_correction(train.y, args.prior_power)
    factors = np.asarray(correction["factors"]) if correction else 1.0
    float_acc = float(((predict_keras(model, ev.x, scale=args.input_scale,
                                      offset=args.input_offset) * factors).argmax(1)
                       == ev.y).mean())

    out.parent.mkdir(parents=True, exist_ok=True)
    meta_path = out.with_suffix(".json")
    run_cfg = {}
    run_dir = src.parent if src.is_file() else src
    if (run_dir / "config.json").is_file():
        run_cfg = json.loads((run_dir / "config.json").read_text())
    earlier = []  # a warm restart (--init) continues an earlier run: record the whole chain
    cfg = run_cfg
    while cfg.get("init") and (Path(cfg["init"]).parent / "config.json").is_file() \
            and len(earlier) < 10:
        cfg = json.loads((Path(cfg["init"]).parent / "config.json").read_text())
        earlier.append({k: v for k, v in cfg.items() if k not in ("data", "data_sha256")})
    meta = {
        "format": METADATA_FORMAT,
        "name": name,
        "labels": list(LABELS),
        "input": {
            "height": 48, "width": 48, "channels": 1, "color": "grayscale",
            "normalization": {"scale": args.input_scale, "offset": args.input_offset,
                              "meaning": "float input = pixel (0..255) * scale + offset, "
                                         "then quantized with the input tensor's scale and "
                                         "zero point"},
            "face": face_metadata(run_cfg, train.x),
        },
        **({"output": {"prior_correction": correction}} if correction else {}),
        "params": params,
        "macs": count_macs(model),
        "source_model": {"path": src.name, "sha256": file_sha256(src)},
        "training": {
            "recipe": {k: v for k, v in run_cfg.items() if k not in ("data", "data_sha256")},
            "data_sha256": run_cfg.get("data_sha256", {}),
            "git_commit": run_cfg.get("git_commit", "unknown"),
            "earlier_runs": earlier,
            # how model.keras was chosen and finished (precise batch norm), when recorded
            "final": json.loads((run_dir / "final.json").read_text())
            if (run_dir / "final.json").is_file() else {},
        },
        "calibration": {"split": "Training", "images": int(len(calib_idx)), "seed": args.seed,
                        "data_sha256": file_sha256(train.path)},
        "conversion": {"git_commit": git_commit(), "io": args.io,
                       "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    meta = portable(meta)  # it ships: no path of this machine in it
    tmp_model = out.with_suffix(".tflite.tmp")
    tmp_model.write_bytes(tflite)
    tmp_meta = out.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta, indent=1))
    # the device reads normalization from the JSON beside the model: score it in place
    scored = tmp_model.with_name(tmp_model.stem + "_scoring.tflite")
    os.replace(tmp_model, scored)
    os.replace(tmp_meta, scored.with_suffix(".json"))
    try:
        int8_acc = float((predict_tflite(scored, ev.x, args.threads).argmax(1) == ev.y).mean())
        meta["quantization"] = _tensor_quant(scored)
    except Exception:
        scored.unlink(missing_ok=True)
        scored.with_suffix(".json").unlink(missing_ok=True)
        raise
    drop = (float_acc - int8_acc) * 100
    from fer_pi.machine import versions
    from fer_pi.vision.classify import load_interpreter_class

    runtime, _ = load_interpreter_class()  # the one predict_tflite scored with
    meta["accuracy"] = {ev.name: {"split_role": "validation", "images": len(ev),
                                  "float": round(float_acc, 4), "int8": round(int8_acc, 4)},
                        "runtime": f"{runtime} {versions().get(runtime, '')}".strip(),
                        "note": "PublicTest is the validation split used to choose models; "
                                "PrivateTest is held back"}
    meta["tflite"] = {"bytes": len(tflite)}
    print(f"{ev.name} (validation, {len(ev)} images): float {float_acc:.4f}, int8 "
          f"{int8_acc:.4f}, drop {drop:+.2f} points", flush=True)
    if drop > args.max_drop and not args.accept:
        scored.unlink(missing_ok=True)
        scored.with_suffix(".json").unlink(missing_ok=True)
        print(f"fer-convert: refused: int8 accuracy {int8_acc:.4f} is {drop:.2f} points below "
              f"float {float_acc:.4f} (limit {args.max_drop}); --accept writes it anyway",
              file=sys.stderr)
        return EXIT_REFUSED
    meta["tflite"]["sha256"] = file_sha256(scored)
    os.replace(scored, out)
    scored.with_suffix(".json").unlink(missing_ok=True)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out} ({len(tflite):,} bytes) and {meta_path}")
    return 0


def main(argv=None) -> int:
    return main_wrapper("fer-convert", parse_args, run, (ConvertError, DataError), argv)


if __name__ == "__main__":
    sys.exit(main())

"""fer-eval: score a .keras or .tflite model on a FER2013 split.

Writes eval_<split>.json (accuracy with its 95 % Wilson interval, per-class
precision/recall/F1, macro F1, confusion matrix, mean confidence and calibration error)
and confusion_<split>.png into --out.
With --against OTHER, also scores OTHER on the same images and says whether the two
differ by more than the split can tell (exact McNemar test on the images where they
disagree): the question before replacing a shipped model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_pi.core.labels import LABELS
from fer_tools.cliutil import has_module, main_wrapper, need_module
from fer_tools.data import DataError, file_sha256, load_split, stratified_subset
from fer_tools.metrics import ece, mcnemar, plot_confusion, report
from fer_tools.predict import is_tflite


class EvalError(Exception):
    pass


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fer-eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help=".tflite (scored through the device classifier) or .keras/.h5")
    p.add_argument("--split", default="PublicTest", help="split name: PublicTest (validation), "
                   "Training, or PrivateTest where you have it")
    p.add_argument("--data", default=None, help="FER2013 folder (default: $FER_DATA or "
                   "../shared/data/fer2013)")
    p.add_argument("--out", default=None, help="folder for the JSON and PNG (default: beside "
                   "the model)")
    p.add_argument("--flip-tta", action="store_true", help="average with the mirrored face")
    p.add_argument("--threads", type=int, default=2, help="TFLite threads")
    p.add_argument("--limit", type=int, default=0, help="score only N images (stratified)")
    p.add_argument("--input-scale", type=float, default=1.0, help="Keras models only: input is "
                   "pixel*scale+offset")
    p.add_argument("--input-offset", type=float, default=0.0)
    p.add_argument("--end-to-end", metavar="SET", default=None, help="instead: whole labelled "
                   "pictures and clips (a manifest, or a folder per label) through the "
                   "device's own pipeline, with fer-pi's settings (fer-eval --end-to-end SET "
                   "--help)")
    p.add_argument("--against", metavar="OTHER", default=None, help="a second model: a paired "
                   "comparison on the same images (and the same --flip-tta)")
    return p.parse_args(argv)


def evaluate(model_path: Path, split, flip: bool = False, threads: int = 2,
             scale: float = 1.0, offset: float = 0.0):
    from fer_tools.predict import predict_keras, predict_tflite

    if not model_path.exists():
        raise EvalError(f"model not found: {model_path}")
    if is_tflite(model_path):
        probs = predict_tflite(model_path, split.x, threads, flip)
    else:
        from fer_tools.convert import ConvertError, load_model

        need_module("keras", f"scoring a Keras model ({model_path.name}; a .tflite needs no "
                    "TensorFlow)")

        try:
            model = load_model(model_path)
        except ConvertError as exc:
            raise EvalError(str(exc)) from None
        probs = predict_keras(model, split.x, flip, scale=scale, offset=offset)
    return report(split.y, probs.argmax(1), LABELS), probs


def run(args) -> int:
    path = Path(args.model)
    if not path.exists():
        raise EvalError(f"model not found: {path}")
    split = load_split(args.data, args.split)
    if args.limit:
        idx = stratified_subset(split.y, args.limit, 0)
        split = type(split)(split.name, split.x[idx], split.y[idx], split.path)
    rep, probs = evaluate(path, split, args.flip_tta, args.threads, args.input_scale,
                          args.input_offset)
    if args.against:
        other = Path(args.against)
        rep_b, probs_b = evaluate(other, split, args.flip_tta, args.threads, args.input_scale,
                                  args.input_offset)
        rep["paired"] = {"against": other.name, "against_sha256": file_sha256(other),
                         "against_accuracy": rep_b["accuracy"],
                         **mcnemar(probs.argmax(1) == split.y, probs_b.argmax(1) == split.y)}
    # how sure it says it is against how often it is right (a .tflite with its metadata's
    # temperature, as the device shows it; a .keras as trained)
    rep["mean_confidence"] = float(probs.max(1).mean())
    rep["ece"] = ece(probs, split.y)
    rep.update({"model": path.name, "model_sha256": file_sha256(path), "split": split.name,
                "flip_tta": args.flip_tta, "limit": args.limit,
                "split_role": {"PublicTest": "validation", "Training": "training"}.get(
                    split.name, "test")})
    out = Path(args.out) if args.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{path.stem}_{split.name}{'_flip' if args.flip_tta else ''}"
    (out / f"eval_{stem}.json").write_text(json.dumps(rep, indent=1) + "\n")
    png = has_module("matplotlib")
    if png:
        plot_confusion(rep, out / f"confusion_{stem}.png",
                       f"{path.name} on {split.name} ({rep['n']} images): acc "
                       f"{rep['accuracy']:.3f}")
    else:
        print("no confusion PNG: matplotlib is not installed (pip install 'fer-pi[train]')",
              file=sys.stderr)
    print(f"{path.name} on {split.name} ({rep['split_role']}, {rep['n']} images"
          f"{', flip TTA' if args.flip_tta else ''}): accuracy {rep['accuracy']:.4f} "
          f"(95 % interval {rep['accuracy_ci95'][0]:.4f}-{rep['accuracy_ci95'][1]:.4f}), "
          f"macro F1 {rep['macro_f1']:.4f}")
    print(f"  confidence: mean {100 * rep['mean_confidence']:.1f} % against accuracy "
          f"{100 * rep['accuracy']:.1f} %; calibration error {100 * rep['ece']:.1f} points")
    for name, c in rep["per_class"].items():
        print(f"  {name:9s} precision {c['precision']:.3f}  recall {c['recall']:.3f}  "
              f"f1 {c['f1']:.3f}  n={c['support']}")
    if "paired" in rep:
        pr = rep["paired"]
        print(f"against {pr['against']}: accuracy {pr['against_accuracy']:.4f}; "
              f"{path.name} alone right on {pr['a_only']} images, {pr['against']} alone on "
              f"{pr['b_only']}: difference {100 * pr['difference']:+.2f} points, McNemar "
              f"p = {pr['p_value']:.3f}"
              + (" (not a difference this split can tell)" if pr["p_value"] >= 0.05 else ""))
    print(f"wrote {out / f'eval_{stem}.json'}" + (f" and confusion_{stem}.png" if png else ""))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--end-to-end" in argv:  # its own options: every fer-pi setting
        from fer_tools import endtoend

        i = argv.index("--end-to-end")
        return endtoend.main(argv[:i] + argv[i + 1:])
    return main_wrapper("fer-eval", parse_args, run, (EvalError, DataError), argv)


if __name__ == "__main__":
    sys.exit(main())

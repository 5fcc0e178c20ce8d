"""Ship a finished training run into models/: the steps that must all happen, in order.

    python -m fer_tools.ship runs/vgg --name vgg [--models models] [--calibration 3000]

1. fer-convert the run's model.keras (the recipe and data hashes come from the run folder)
   to models/fer_NAME_int8.tflite + .json; it refuses a drop past --max-drop;
2. fit the int8 model's confidence temperature on PublicTest (fer_tools.calibrate);
3. copy the float model, history and curve beside it (fer_NAME.keras, _history.csv,
   _curve.png);
4. fer-eval float and int8, with and without flip TTA, on PublicTest (validation);
5. regenerate MODEL_CARD.md.
Latency comes from fer-bench (`fer-bench --stage infer --model seed,NAME --threads 1,2,4
--no-flip-tta --json --output models/bench_infer.json`), run on a quiet machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from fer_tools import calibrate, card, convert, evaluate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_tools.ship", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="training run folder (with model.keras and config.json)")
    p.add_argument("--name", required=True, help="the model's name on the device (--model NAME)")
    p.add_argument("--models", default="models", help="the models folder")
    p.add_argument("--calibration", default="3000")
    p.add_argument("--max-drop", default="1.0", help="points of int8 loss refused")
    p.add_argument("--data", default=None)
    p.add_argument("--prior-power", default="0", help="fer-convert --prior-power")
    args = p.parse_args(argv)
    run, models, name = Path(args.run), Path(args.models), args.name
    if not (run / "model.keras").is_file():
        print(f"ship: no model.keras in {run}", file=sys.stderr)
        return 2
    data = ["--data", args.data] if args.data else []
    tfl = models / f"fer_{name}_int8.tflite"
    rc = convert.main([str(run / "model.keras"), "--name", name, "--out", str(tfl),
                       "--calibration", args.calibration, "--max-drop", args.max_drop,
                       "--prior-power", args.prior_power, *data])
    if rc:
        return rc
    rc = calibrate.main([str(tfl), *data])
    if rc:
        return rc
    keras_copy = models / f"fer_{name}.keras"
    shutil.copyfile(run / "model.keras", keras_copy)
    for src, dst in (("history.csv", f"fer_{name}_history.csv"), ("curve.png", f"fer_{name}_curve.png")):
        if (run / src).is_file():
            shutil.copyfile(run / src, models / dst)
    for model in (keras_copy, tfl):
        for flip in ([], ["--flip-tta"]):
            rc = evaluate.main([str(model), "--out", str(models), *flip, *data])
            if rc:
                return rc
    return card.main([str(models)])


if __name__ == "__main__":
    sys.exit(main())

"""fer-train: train a FER2013 model, resumably, with a checkpoint every epoch.

A run lives in one folder (--out): config.json (the recipe, so --resume needs
nothing else), last.keras (model + optimizer, written every epoch), best.keras
(best PublicTest accuracy so far: PublicTest is the validation split),
model.keras (float32 inference model of the best epoch, the input of
fer-convert), history.csv/json and curve.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fer_tools.cliutil import main_wrapper
from fer_tools.data import DataError, file_sha256, load_split, resolve_data_dir, stratified_subset
from fer_tools.gitinfo import git_commit


@dataclass
class Recipe:
    arch: str = "seed"
    epochs: int = 100
    batch: int = 120
    lr: float = 1e-3
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    shift: float = 0.2
    zoom: float = 0.2
    rotation_deg: float = 10.0
    flip: bool = True
    bf16: bool = False
    seed: int = 1
    limit: int = 0
    data: str = ""
    data_sha256: dict = field(default_factory=dict)
    git_commit: str = ""
    init: str = ""
    dropout: str = ""  # comma-separated rates for archs that take them (seed: three)
    init_sha256: str = ""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fer-train",
        description="Train a FER2013 emotion model (Keras). Defaults are the design paper's "
        "recipe: Adam, shift 20%%, zoom 20%%, rotation 10 deg, horizontal flip, batch 120, "
        "cosine-annealed learning rate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = Recipe()
    p.add_argument("--arch", default=d.arch, help="architecture name (see fer_tools.archs)")
    p.add_argument("--data", default=None, help="folder with Training.npz and PublicTest.npz "
                   "(default: $FER_DATA or ../shared/data/fer2013)")
    p.add_argument("--out", default="runs/seed", help="run folder (checkpoints, history)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr, help="peak Adam learning rate")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--shift", type=float, default=d.shift, help="random shift, fraction of size")
    p.add_argument("--zoom", type=float, default=d.zoom, help="random zoom, fraction")
    p.add_argument("--rotation", dest="rotation_deg", type=float, default=d.rotation_deg,
                   help="random rotation, degrees")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no horizontal flips")
    p.add_argument("--bf16", action="store_true", help="mixed_bfloat16 (about 2x faster on "
                   "AVX-512 CPUs; weights stay float32)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit", type=int, default=0, help="use only N Training images "
                   "(stratified; for smoke runs)")
    p.add_argument("--dropout", default="", help="dropout rates, comma-separated (seed: three, "
                   "default 0.25,0.25,0.5)")
    p.add_argument("--init", default="", help="start from this model's weights (same arch): "
                   "a warm restart with a new schedule after an earlier run")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its "
                   "last finished epoch, with its saved recipe")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return p.parse_args(argv)


def _fmt_secs(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _augmenter(recipe: Recipe):
    from keras import layers, models

    rng = recipe.seed
    augs = []
    if recipe.shift:
        augs.append(layers.RandomTranslation(recipe.shift, recipe.shift, fill_mode="nearest", seed=rng))
    if recipe.zoom:
        augs.append(layers.RandomZoom(recipe.zoom, recipe.zoom, fill_mode="nearest", seed=rng + 1))
    if recipe.rotation_deg:
        augs.append(layers.RandomRotation(recipe.rotation_deg / 360.0, fill_mode="nearest", seed=rng + 2))
    if recipe.flip:
        augs.append(layers.RandomFlip("horizontal", seed=rng + 3))
    return models.Sequential(augs, name="augment") if augs else None


def _datasets(recipe: Recipe, train, val):
    import tensorflow as tf

    x = train.x[..., None].astype(np.float32)
    y = train.y.astype(np.int32)
    aug = _augmenter(recipe)
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(y), seed=recipe.seed, reshuffle_each_iteration=True)
        .batch(recipe.batch)
    )
    if aug is not None:
        ds = ds.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(2)
    vds = tf.data.Dataset.from_tensor_slices(
        (val.x[..., None].astype(np.float32), val.y.astype(np.int32))
    ).batch(512)
    return ds, vds


def _compile(model, recipe: Recipe, steps_per_epoch: int):
    import keras

    total = max(1, recipe.epochs * steps_per_epoch)
    warm = int(recipe.warmup_epochs * steps_per_epoch)
    if warm:
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total - warm), warmup_target=recipe.lr, warmup_steps=warm
        )
    else:
        schedule = keras.optimizers.schedules.CosineDecay(recipe.lr, decay_steps=total)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing) \
        if recipe.label_smoothing else keras.losses.SparseCategoricalCrossentropy()
    # metrics by keyword: Keras 3 takes a third positional argument as loss_weights
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])


def float32_copy(model, arch: str):
    """The same weights in a float32 model: what fer-convert quantizes."""
    import keras

    from fer_tools import archs

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clone = archs.build(arch)
        clone.set_weights(model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return clone


class _Progress:
    """Epoch lines with time left; history appended to CSV/JSON after every epoch."""

    def __init__(self, out: Path, recipe: Recipe, start_epoch: int, history: list, quiet: bool):
        import keras

        outer = self

        class CB(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.t0 = time.monotonic()

            def on_epoch_end(self, epoch, logs=None):
                outer.epoch_end(self.model, epoch, logs or {})

        self.callback = CB()
        self.out, self.recipe, self.history, self.quiet = out, recipe, history, quiet
        self.durations: list[float] = []
        self.best = max((h["val_accuracy"] for h in history), default=-1.0)
        self.start_epoch = start_epoch

    def epoch_end(self, model, epoch: int, logs: dict) -> None:
        took = time.monotonic() - self.t0
        self.durations.append(took)
        row = {"epoch": epoch + 1, "seconds": round(took, 1)}
        row.update({k: float(v) for k, v in logs.items() if np.isscalar(v) or hasattr(v, "item")})
        row["lr"] = float(model.optimizer.learning_rate)
        self.history.append(row)
        improved = row.get("val_accuracy", -1) > self.best
        # the checkpoint goes first: a kill during the writes below loses nothing
        tmp = self.out / "last.tmp.keras"
        model.save(tmp)
        if improved:
            self.best = row["val_accuracy"]
            best_tmp = self.out / "best.tmp.keras"
            model.save(best_tmp)
            os.replace(best_tmp, self.out / "best.keras")
        os.replace(tmp, self.out / "last.keras")
        _atomic_write_text(self.out / "history.json", json.dumps(self.history, indent=1))
        _write_csv(self.out / "history.csv", self.history)
        _atomic_write_text(
            self.out / "state.json",
            json.dumps({"epochs_done": epoch + 1, "best_val_accuracy": self.best}),
        )
        if not self.quiet:
            left = (self.recipe.epochs - epoch - 1) * float(np.median(self.durations[-5:]))
            print(
                f"epoch {epoch + 1}/{self.recipe.epochs}  loss {row['loss']:.4f}  "
                f"acc {row['accuracy']:.4f}  val_loss {row.get('val_loss', float('nan')):.4f}  "
                f"val_acc {row.get('val_accuracy', float('nan')):.4f}{' *' if improved else ''}  "
                f"lr {row['lr']:.2e}  {took:.0f}s  left {_fmt_secs(left)}",
                flush=True,
            )


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
    _atomic_write_text(path, "\n".join(lines) + "\n")


def plot_history(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [h["loss"] for h in history], label="train")
    a1.plot(ep, [h.get("val_loss") for h in history], label="PublicTest (val)")
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend()
    a2.plot(ep, [h["accuracy"] for h in history], label="train")
    a2.plot(ep, [h.get("val_accuracy") for h in history], label="PublicTest (val)")
    a2.set_xlabel("epoch"), a2.set_ylabel("accuracy"), a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    cfg_path = out / "config.json"
    if args.resume:
        if not cfg_path.is_file() or not (out / "last.keras").is_file():
            raise DataError(f"nothing to resume in {out}: no config.json/last.keras")
        saved = json.loads(cfg_path.read_text())
        recipe = Recipe(**saved)
        if args.epochs != Recipe().epochs and args.epochs != recipe.epochs:
            raise DataError(f"--epochs {args.epochs} differs from the run's {recipe.epochs}; "
                            "the cosine schedule is fixed when a run starts")
    else:
        data_dir = resolve_data_dir(args.data)
        recipe = Recipe(
            arch=args.arch, epochs=args.epochs, batch=args.batch, lr=args.lr,
            warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
            shift=args.shift, zoom=args.zoom, rotation_deg=args.rotation_deg, flip=args.flip,
            bf16=args.bf16, seed=args.seed, limit=args.limit, data=str(data_dir.resolve()),
            init=str(Path(args.init).resolve()) if args.init else "", dropout=args.dropout,
        )
        if args.init and not Path(args.init).is_file():
            raise DataError(f"--init model not found: {args.init}")
    if recipe.epochs < 1 or recipe.batch < 1:
        raise DataError("--epochs and --batch must be at least 1")
    from fer_tools import archs

    if recipe.arch not in archs.ARCHS:
        raise DataError(f"unknown --arch {recipe.arch!r}; choose from {', '.join(archs.ARCHS)}")
    train = load_split(args.data if args.data else recipe.data, "Training")
    val = load_split(args.data if args.data else recipe.data, "PublicTest")
    if not args.resume:
        recipe.data_sha256 = {s.name: file_sha256(s.path) for s in (train, val)}
        recipe.git_commit = git_commit()

    if args.threads:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
    import keras
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(recipe.seed)
    if recipe.bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    if recipe.limit:
        idx = stratified_subset(train.y, recipe.limit, recipe.seed)
        train = type(train)(train.name, train.x[idx], train.y[idx], train.path)
    steps = int(np.ceil(len(train) / recipe.batch))

    out.mkdir(parents=True, exist_ok=True)
    history: list = []
    if args.resume:
        state = json.loads((out / "state.json").read_text())
        start = int(state["epochs_done"])
        model = keras.models.load_model(out / "last.keras")
        if (out / "history.json").is_file():
            history = [h for h in json.loads((out / "history.json").read_text()) if h["epoch"] <= start]
        print(f"resuming {out} at epoch {start + 1}/{recipe.epochs}", flush=True)
    else:
        start = 0
        _atomic_write_text(cfg_path, json.dumps(asdict(recipe), indent=1))
        kwargs = {}
        if recipe.dropout:
            try:
                kwargs["dropout"] = tuple(float(x) for x in recipe.dropout.split(","))
            except ValueError:
                raise DataError(f"--dropout must be comma-separated rates, got {recipe.dropout!r}") from None
        try:
            model = archs.build(recipe.arch, **kwargs)
        except TypeError:
            raise DataError(f"--dropout: architecture {recipe.arch!r} takes no dropout rates") from None
        if recipe.init:
            recipe.init_sha256 = file_sha256(recipe.init)
            _atomic_write_text(cfg_path, json.dumps(asdict(recipe), indent=1))
            model.set_weights(keras.models.load_model(recipe.init, compile=False).get_weights())
            print(f"starting from the weights of {recipe.init}", flush=True)
        _compile(model, recipe, steps)
        print(f"training {recipe.arch} ({model.count_params():,} parameters) on "
              f"{len(train)} images for {recipe.epochs} epochs, {steps} steps each", flush=True)

    if start < recipe.epochs:
        ds, vds = _datasets(recipe, train, val)
        if recipe.label_smoothing:
            ds = ds.map(lambda a, b: (a, tf.one_hot(b, 7)))
            vds = vds.map(lambda a, b: (a, tf.one_hot(b, 7)))
        progress = _Progress(out, recipe, start, history, args.quiet)
        try:
            model.fit(ds, validation_data=vds, epochs=recipe.epochs, initial_epoch=start,
                      verbose=0, callbacks=[progress.callback])
        except KeyboardInterrupt:
            done = json.loads((out / "state.json").read_text())["epochs_done"] \
                if (out / "state.json").is_file() else 0
            print(f"interrupted; {done} epoch(s) saved in {out}, continue with --resume",
                  file=sys.stderr)
            return 130

    best = keras.models.load_model(out / "best.keras", compile=False)
    final = float32_copy(best, recipe.arch)
    final.save(out / "model.keras")
    if history:
        plot_history(history, out / "curve.png", f"{recipe.arch}: {out.name}")
    best_row = max(history, key=lambda h: h.get("val_accuracy", -1)) if history else {}
    print(f"done: best PublicTest (validation) accuracy {best_row.get('val_accuracy', float('nan')):.4f} "
          f"at epoch {best_row.get('epoch')}; inference model {out / 'model.keras'}", flush=True)
    return 0


def main(argv=None) -> int:
    return main_wrapper("fer-train", parse_args, run, (DataError,), argv)


if __name__ == "__main__":
    sys.exit(main())

"""Class probabilities for a batch of 48×48 faces from a Keras or a TFLite model.

TFLite goes through the device's own Classifier, so the accuracy reported for
an int8 model is the accuracy of the code path the Pi runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def is_tflite(path: Path) -> bool:
    return Path(path).suffix == ".tflite"


def predict_tflite(path: Path, x: np.ndarray, threads: int = 2, flip: bool = False) -> np.ndarray:
    from fer_pi.vision.classify import Classifier

    clf = Classifier(Path(path), threads=threads, flip_tta=flip)
    return np.stack([clf.probabilities(img) for img in x])


def predict_keras(model, x: np.ndarray, flip: bool = False, batch: int = 512,
                  scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """``scale``/``offset``: the model's input normalization (input = pixel·scale + offset)."""
    xf = x[..., None].astype(np.float32) * scale + offset
    out = np.asarray(model.predict(xf, batch_size=batch, verbose=0), np.float32)
    if flip:
        out = (out + np.asarray(model.predict(xf[:, :, ::-1], batch_size=batch, verbose=0))) / 2
    return out


def load_keras(path: Path):
    """A .keras/.h5 file or a SavedModel folder, as something with .predict()."""
    import keras

    path = Path(path)
    if path.is_dir():
        layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
        inp = keras.Input((48, 48, 1))
        out = layer(inp)
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return keras.Model(inp, out)
    return keras.models.load_model(path, compile=False)

"""The shipped int8 model through the device classifier: metadata, quantization, accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_pi.vision.classify import Classifier
from fer_pi.vision.modelfile import metadata_path, shipped_models


def test_every_shipped_model_carries_its_metadata():
    models = shipped_models()
    assert "seed" in models
    for name, path in models.items():
        meta = json.loads(metadata_path(path).read_text())
        assert meta["name"] == name
        assert meta["labels"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        for key in ("input", "quantization", "params", "source_model", "training",
                    "calibration", "conversion", "accuracy", "confidence"):
            assert key in meta, key
        assert {"float", "int8"} <= set(meta["accuracy"]["PublicTest"])
        assert meta["quantization"]["input"]["dtype"] in ("int8", "uint8")


def test_quantization_comes_from_the_model(model_path):
    clf = Classifier(model_path, threads=1)
    meta = json.loads(metadata_path(model_path).read_text())
    q = meta["quantization"]["input"]
    assert clf._in_scale == pytest.approx(q["scale"]) and clf._in_zp == q["zero_point"]
    # pixels map onto the int8 range through the model's own scale and zero point
    lo, hi = clf.quantize(np.array([[0, 255]], np.uint8))[0]
    assert lo == np.clip(round(0 * meta["input"]["normalization"]["scale"] / q["scale"]
                               + q["zero_point"]), -128, 127)
    assert hi > lo


def test_many_faces_reuse_one_interpreter(model_path):
    clf = Classifier(model_path, threads=2)
    interp = clf.interpreter
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(6)]
    batch = clf.classify(crops)
    singles = [clf.classify([c])[0] for c in reversed(crops)][::-1]
    assert clf.interpreter is interp
    for a, b in zip(batch, singles, strict=True):
        assert a.probs == b.probs  # no state carried from one face to the next
        assert abs(sum(a.probs) - 1) < 1e-3


def test_shipped_accuracy_matches_its_metadata(model_path, fer2013):
    """The device's own preprocessing reproduces the int8 accuracy the model card states."""
    from fer_pi.core.labels import LABELS
    from fer_tools.data import load_split

    split = load_split(fer2013, "PublicTest")
    clf = Classifier(model_path, threads=2)
    pred = np.array([clf.probabilities(x).argmax() for x in split.x])
    acc = float((pred == split.y).mean())
    meta = json.loads(metadata_path(model_path).read_text())
    # the same runtime reproduces the figure; another one rounds its int8 kernels
    # differently (tflite-runtime 2.14 vs ai-edge-litert 2.3: 1.5 % of labels differ)
    same = meta["accuracy"].get("runtime", "ai_edge_litert").split()[0] == clf.runtime
    assert acc == pytest.approx(meta["accuracy"]["PublicTest"]["int8"],
                                abs=0.0015 if same else 0.006)
    # and it is far above the majority class (happy, 24.9 %)
    assert acc > 0.5 and len(set(pred.tolist())) >= len(LABELS) - 1

"""Host tools end to end on tiny runs: fer-train (with a killed run resumed), fer-convert, fer-eval.

Needs the train extra (TensorFlow) and the FER2013 folder; skips with the reason otherwise.
CI never trains a real model: these runs use 2,000 images and a couple of epochs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="host tools need the train extra: pip install '.[train]'")

from conftest import needs_data  # noqa: E402

from fer_tools.data import default_data_dir  # noqa: E402

DATA = default_data_dir()
pytestmark = needs_data
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def tool(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"fer_tools.{name}", *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, fer2013) -> Path:
    out = tmp_path_factory.mktemp("train") / "seed"
    proc = tool("train", "--arch", "seed", "--epochs", "1", "--limit", "2000", "--bf16",
                "--batch", "256", "--out", str(out), "--data", str(fer2013))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "epoch 1/1" in proc.stdout and "val_acc" in proc.stdout and "left" in proc.stdout
    return out


def test_train_writes_checkpoints_history_and_curve(smoke_run):
    for name in ("config.json", "last.keras", "best.keras", "model.keras", "history.csv",
                 "history.json", "curve.png", "state.json"):
        assert (smoke_run / name).is_file(), name
    cfg = json.loads((smoke_run / "config.json").read_text())
    assert cfg["arch"] == "seed" and cfg["limit"] == 2000 and set(cfg["data_sha256"]) == {
        "Training", "PublicTest"}
    hist = json.loads((smoke_run / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1]


def test_seed_architecture_is_the_papers():
    from fer_tools.archs import seed

    m = seed()
    assert m.count_params() == 879_623
    spatial = [layer.output.shape[1] for layer in m.layers
               if type(layer).__name__ in ("Conv2D", "MaxPooling2D")]
    assert spatial == [46, 44, 22, 20, 18, 18, 8, 6, 4, 2, 1]


def train_then_kill(out: Path, after_epochs: int, *args: str) -> int:
    """fer-train killed (as a power cut would) once ``after_epochs`` epochs are saved;
    returns the epochs it had saved."""
    proc = subprocess.Popen([sys.executable, "-m", "fer_tools.train", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    state = out / "state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epochs_done"] >= after_epochs:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return json.loads(state.read_text())["epochs_done"]


def test_killed_run_resumes_from_last_finished_epoch(tmp_path):
    out = tmp_path / "run"
    done = train_then_kill(out, 1, "--arch", "tiny", "--epochs", "6", "--limit", "3000",
                           "--batch", "64", "--data", str(DATA))
    assert 1 <= done < 6, "the kill must land mid-run for this test to mean anything"
    resumed = tool("train", "--resume", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {out} at epoch {done + 1}/6" in resumed.stdout
    assert f"epoch {done}/6" not in resumed.stdout  # finished epochs are not trained again
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4, 5, 6]
    assert json.loads((out / "state.json").read_text())["epochs_done"] == 6


def test_convert_and_eval_end_to_end(smoke_run, tmp_path):
    out = tmp_path / "fer_smoke_int8.tflite"
    proc = tool("convert", str(smoke_run / "model.keras"), "--out", str(out), "--data", str(DATA),
                "--calibration", "200", "--limit-eval", "700", "--accept")
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["labels"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert meta["params"] == 879_623
    q = meta["quantization"]
    assert q["input"]["dtype"] == "int8" and q["output"]["dtype"] == "int8"
    assert q["input"]["shape"] == [1, 48, 48, 1]
    assert {"float", "int8"} <= set(meta["accuracy"]["PublicTest"])
    assert len(meta["source_model"]["sha256"]) == 64
    assert set(meta["training"]["data_sha256"]) == {"Training", "PublicTest"}
    # the int8 model really is int8 inside: weights of its conv layers are int8 tensors
    from fer_pi.vision.classify import load_interpreter_class

    _, cls = load_interpreter_class()
    details = cls(model_path=str(out)).get_tensor_details()
    assert sum(d["dtype"].__name__ == "int8" for d in details) > 10
    assert not any(d["dtype"].__name__ == "float32" for d in details)

    ev = tool("evaluate", str(out), "--data", str(DATA), "--out", str(tmp_path), "--flip-tta",
              "--limit", "500")
    assert ev.returncode == 0, ev.stderr[-2000:]
    rep = json.loads((tmp_path / "eval_fer_smoke_int8_PublicTest_flip.json").read_text())
    assert rep["n"] == 500 and len(rep["confusion"]) == 7 and sum(map(sum, rep["confusion"])) == 500
    assert 0 <= rep["macro_f1"] <= 1 and set(rep["per_class"]) == set(meta["labels"])
    assert (tmp_path / "confusion_fer_smoke_int8_PublicTest_flip.png").is_file()


def test_convert_refuses_a_large_int8_drop(smoke_run, tmp_path):
    out = tmp_path / "refused.tflite"
    proc = tool("convert", str(smoke_run / "model.keras"), "--out", str(out), "--data",
                str(DATA), "--calibration", "50", "--limit-eval", "300", "--max-drop", "-100")
    assert proc.returncode == 3
    assert "refused" in proc.stderr and "below float" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing", "model not found"),
        ("text", "not a Keras model"),
        ("corrupt", "not a readable Keras model"),
        ("wrong_input", "input must be 48x48x1"),
        ("wrong_outputs", "must have 7 outputs"),
        ("no_data", "data folder not found"),
    ],
)
def test_convert_bad_input(tmp_path, setup, needle):
    import keras

    model = tmp_path / "m.keras"
    data = str(DATA)
    if setup == "text":
        model = tmp_path / "m.txt"
        model.write_text("hello")
    elif setup == "corrupt":
        model.write_bytes(b"PK\x03\x04 broken zip")
    elif setup in ("wrong_input", "wrong_outputs"):
        shape, n = ((64, 64, 3), 7) if setup == "wrong_input" else ((48, 48, 1), 5)
        keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                          keras.layers.Dense(n, activation="softmax")]).save(model)
    elif setup == "no_data":
        data = str(tmp_path / "nowhere")
    proc = tool("convert", str(model), "--data", data, "--out", str(tmp_path / "o.tflite"))
    assert proc.returncode == 2, proc.stderr[-1500:]
    lines = [x for x in proc.stderr.splitlines() if x.startswith("fer-convert:")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr


def test_eval_against_a_second_model_is_a_paired_comparison(tmp_path):
    from fer_pi.vision.modelfile import resolve_model

    seed, vgg = resolve_model("seed"), resolve_model("vgg")
    ev = tool("evaluate", str(vgg), "--against", str(seed), "--data", str(DATA), "--out",
              str(tmp_path), "--limit", "300")
    assert ev.returncode == 0, ev.stderr[-2000:]
    rep = json.loads((tmp_path / f"eval_{vgg.stem}_PublicTest.json").read_text())
    pr = rep["paired"]
    assert pr["n"] == rep["n"] == 300 and pr["against"] == seed.name
    # the disagreements are exactly the difference in accuracy
    assert (pr["a_only"] - pr["b_only"]) == round((rep["accuracy"] - pr["against_accuracy"]) * 300)
    assert 0 < pr["p_value"] <= 1 and "McNemar p" in ev.stdout
    lo, hi = rep["accuracy_ci95"]
    assert lo < rep["accuracy"] < hi


def test_ship_puts_a_run_into_a_models_folder_with_everything_the_card_needs(smoke_run,
                                                                             tmp_path):
    """ship: convert, calibrate, copy, evaluate four ways, write the card; the device then
    loads the model with the temperature the metadata carries."""
    from fer_pi.vision.classify import Classifier

    models = tmp_path / "models"
    models.mkdir()
    proc = tool("ship", str(smoke_run), "--name", "smoke", "--models", str(models),
                "--calibration", "200", "--max-drop", "100", "--data", str(DATA))
    assert proc.returncode == 0, proc.stderr[-2000:]
    tfl = models / "fer_smoke_int8.tflite"
    meta = json.loads((models / "fer_smoke_int8.json").read_text())
    conf = meta["confidence"]
    assert 0.1 <= conf["temperature"] <= 10 and 0.1 <= conf["temperature_single"] <= 10
    assert Classifier(tfl, flip_tta=True).temperature == conf["temperature"]
    assert Classifier(tfl, flip_tta=False).temperature == conf["temperature_single"]
    for stem in ("fer_smoke", "fer_smoke_int8"):
        for flip in ("", "_flip"):
            ev = json.loads((models / f"eval_{stem}_PublicTest{flip}.json").read_text())
            assert 0 <= ev["ece"] <= 1 and 0 < ev["mean_confidence"] <= 1
    card = (models / "MODEL_CARD.md").read_text()
    fitted = conf["modes"]["flip_tta"]["fitted_temperature"]
    assert "## Model `smoke`" in card and f"the fitted temperature {fitted:.3f}" in card
    assert (models / "fer_smoke.keras").is_file() and (models / "fer_smoke_history.csv").is_file()

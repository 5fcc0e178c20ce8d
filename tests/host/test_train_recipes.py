"""The training recipe's parts (weight averaging, distillation, random erasing, mixup, SGD,
batch-normalized nets) on tiny runs, and batch normalization folding in the int8 model.

Needs the train extra and the FER2013 folder, like test_tools; CI never trains a real model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="host tools need the train extra: pip install '.[train]'")

from test_tools import DATA, needs_data, tool  # noqa: E402  (same skip rule and runner)

SMALL = ("--limit", "600", "--batch", "64", "--data", str(DATA))


def test_random_erasing_replaces_one_rectangle_per_chosen_image():
    import tensorflow as tf

    from fer_tools.train import random_erasing

    x = tf.fill([64, 48, 48, 1], 7.0)
    out = random_erasing(x, 1.0, seed=3).numpy()
    changed = out[..., 0] != 7.0
    for m in changed:
        rows, cols = np.where(m)
        assert rows.size > 0
        box = m[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.mean() > 0.95  # one filled rectangle (noise can hit 7.0 by chance only)
        assert 0.015 * 48 * 48 <= box.size <= 0.3 * 48 * 48
    assert (random_erasing(x, 0.0, seed=3).numpy() == 7.0).all()


def test_mixup_keeps_targets_distributions_and_mixes_pairs():
    import tensorflow as tf

    from fer_tools.train import mixup_batch

    x = tf.constant(np.arange(4, dtype=np.float32).reshape(4, 1, 1, 1) * 10)
    y = tf.one_hot([0, 1, 2, 3], 7)
    mx, my = mixup_batch(x, y, 0.4, seed=1)
    my = my.numpy()
    assert np.allclose(my.sum(1), 1)
    lam = my[0, 0]
    assert np.isclose(my[0, 3], 1 - lam)  # image 0 is mixed with image 3 (the reversed batch)
    assert np.isclose(mx.numpy()[0, 0, 0, 0], lam * 0 + (1 - lam) * 30)


def test_vgg_is_compact_and_its_batch_norm_folds_into_the_int8_model(tmp_path):
    from fer_tools.archs import vgg
    from fer_tools.convert import count_macs

    m = vgg()
    assert 1_000_000 < m.count_params() < 4_000_000  # int8 file under 4 MB
    assert count_macs(m) < 3 * 97_167_488  # the seed's MACs


@needs_data
def test_bn_net_trains_with_sgd_erasing_mixup_and_converts_without_bn_ops(tmp_path):
    out = tmp_path / "bn"
    proc = tool("train", "--arch", "tiny_bn", "--epochs", "1", "--optimizer", "sgd", "--lr",
                "0.01", "--weight-decay", "1e-4", "--erasing", "0.5", "--mixup", "0.2",
                "--bf16", "--out", str(out), *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["optimizer"], cfg["erasing"], cfg["mixup"]) == ("sgd", 0.5, 0.2)
    final = json.loads((out / "final.json").read_text())  # precise BN, best vs last epoch
    assert final["precise_bn_images"] == 1200 and "re-estimated" in proc.stdout
    tfl = tmp_path / "bn.tflite"
    proc = tool("convert", str(out / "model.keras"), "--out", str(tfl), "--calibration", "200",
                "--limit-eval", "200", "--accept", "--data", str(DATA))
    assert proc.returncode == 0, proc.stderr[-2000:]
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(str(tfl), experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    ops = {o["op_name"] for o in interp._get_ops_details()}
    assert "CONV_2D" in ops and not ops & {"MUL", "ADD", "SUB", "RSQRT"}, ops


@needs_data
def test_weight_averaging_and_distillation_record_and_resume(tmp_path):
    teacher = tmp_path / "t"
    assert tool("train", "--arch", "tiny", "--epochs", "1", "--out", str(teacher),
                *SMALL).returncode == 0
    out = tmp_path / "s"
    proc = tool("train", "--arch", "tiny", "--epochs", "3", "--swa-start", "2", "--teachers",
                str(teacher / "model.keras"), "--teacher-weight", "0.5", "--out", str(out), *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "swa_val_acc" in proc.stdout and (out / "swa.keras").is_file()
    targets = np.load(out / "teacher_targets.npy")
    assert targets.shape == (600, 7) and np.allclose(targets.sum(1), 1, atol=1e-4)
    hist = json.loads((out / "history.json").read_text())
    assert [("swa_val_accuracy" in h) for h in hist] == [False, True, True]
    assert json.loads((out / "state.json").read_text())["swa_n"] == 2
    cfg = json.loads((out / "config.json").read_text())
    assert list(cfg["teachers_sha256"]) == [str((teacher / "model.keras").resolve())]
    # SWA and BN do not mix here: refused with the reason
    proc = tool("train", "--arch", "tiny_bn", "--epochs", "2", "--swa-start", "1", "--out",
                str(tmp_path / "x"), *SMALL)
    assert proc.returncode == 2 and "batch normalization" in proc.stderr


@needs_data
def test_ship_converts_evaluates_and_writes_the_card(tmp_path):
    run = tmp_path / "run"
    assert tool("train", "--arch", "tiny", "--epochs", "1", "--out", str(run), *SMALL).returncode == 0
    models = tmp_path / "models"
    models.mkdir()
    proc = tool("ship", str(run), "--name", "tiny", "--models", str(models), "--calibration",
                "200", "--max-drop", "100", "--data", str(DATA))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for f in ("fer_tiny_int8.tflite", "fer_tiny_int8.json", "fer_tiny.keras", "fer_tiny_history.csv",
              "eval_fer_tiny_PublicTest.json", "eval_fer_tiny_int8_PublicTest_flip.json",
              "MODEL_CARD.md"):
        assert (models / f).is_file(), f
    card = (models / "MODEL_CARD.md").read_text()
    assert "| `tiny` |" in card and "## Model `tiny`" in card


def test_precise_bn_sets_the_exact_statistics_of_its_inputs():
    import keras

    from fer_tools.archs import tiny_bn
    from fer_tools.train import has_batch_norm, precise_bn

    m = tiny_bn()
    assert has_batch_norm(m)
    x = np.random.default_rng(0).integers(0, 256, (300, 48, 48, 1)).astype(np.float32)
    precise_bn(m, x, batch=128)
    conv_out = keras.Sequential(m.layers[:2])(x).numpy()  # Rescaling, Conv2D
    bn = m.layers[2]
    mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    assert np.allclose(mean, conv_out.mean((0, 1, 2)), rtol=1e-4, atol=1e-5)
    assert np.allclose(var, conv_out.var((0, 1, 2)), rtol=1e-3, atol=1e-5)


@needs_data
def test_retarget_epochs_anneals_from_the_rate_now_to_zero(tmp_path):
    """A resumed run made shorter: the saved optimizer keeps the schedule it was built with,
    so --retarget-epochs rebuilds it, from the rate reached to 0 at the new end."""
    from test_tools import train_then_kill

    out = tmp_path / "run"
    done = train_then_kill(out, 2, "--arch", "tiny", "--epochs", "40", *SMALL, "--optimizer",
                           "sgd", "--lr", "0.05")
    assert 2 <= done < 40
    refused = tool("train", "--resume", "--retarget-epochs", str(done), "--out", str(out))
    assert refused.returncode == 2 and f"--retarget-epochs {done}" in refused.stderr
    resumed = tool("train", "--resume", "--retarget-epochs", str(done + 2), "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    (rt,) = cfg["retargets"]
    assert (cfg["epochs"], rt["after_epoch"], rt["epochs_before"], rt["epochs"]) == \
        (done + 2, done, 40, done + 2)
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == list(range(1, done + 3))
    # annealing from the rate the run had reached (near 0.05 early in a 40-epoch cosine)
    assert rt["lr"] == pytest.approx(hist[done - 1]["lr"], rel=1e-4) and rt["lr"] > 0.04
    assert 0 < hist[done]["lr"] < rt["lr"] and hist[done + 1]["lr"] == pytest.approx(0, abs=1e-7)


def test_retarget_epochs_without_resume_is_refused(tmp_path):
    """Without --resume the option would do nothing: a new run takes --epochs, and a user
    who meant to shorten a run must not start a fresh one over it."""
    out = tmp_path / "run"
    r = tool("train", "--retarget-epochs", "5", "--out", str(out), "--data", str(tmp_path))
    assert r.returncode == 2 and "--resume" in r.stderr and "--retarget-epochs" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_class_weights_keep_the_loss_size_and_balance_by_the_power():
    from fer_tools.train import class_weights

    y = np.array([0] * 90 + [1] * 10)
    assert np.allclose(class_weights(y, 0.0)[:2], [1, 1])
    w = class_weights(y, 0.5)
    assert np.isclose(w[y].mean(), 1.0) and np.isclose(w[1] / w[0], 3.0)  # sqrt(90 / 10)
    assert class_weights(y, 1.0)[6] == 0.0  # a class with no image weighs nothing


def test_camera_views_are_faces_cut_and_equalised_as_the_device_does():
    from fer_pi.vision.prepare import FacePrep
    from fer_tools.camaug import CameraAug, camera_batch, camera_view

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    face = (100 + 50 * np.sin(xx / 4.0) * np.cos(yy / 5.0)).astype(np.uint8)
    batch = np.stack([face] * 8)[..., None].astype(np.float32)
    prep = FacePrep(1.02, 0.0, True)
    a = camera_batch(batch, 1, prep, CameraAug(), (0.98, 0.0))
    b = camera_batch(batch, 1, prep, CameraAug(), (0.98, 0.0))
    assert a.shape == batch.shape and a.dtype == np.float32
    assert not np.array_equal(a, b)  # each call draws new randomness
    assert all(v.min() == 0 and v.max() == 255 for v in a)  # equalised, as the device's crop
    # with every degradation and jitter off, the view is the face as the device cuts it
    still = CameraAug(p=0.0, box_scale_sd=0.0, box_shift_sd=0.0, aspect=0.0,
                      rotation_deg=0.0, flip=False, face_px=(96.0, 96.0))
    out = camera_view(face, rng, FacePrep(1.0, 0.0, False), still, (1.0, 0.0))
    assert np.abs(out.astype(int) - face).mean() < 4


@needs_data
def test_a_camera_run_records_its_framing_and_real_faces_and_ships_them(tmp_path):
    """--camera measures the Haar framing, --realfaces-performers adds those people's faces;
    both go into the recipe, and fer-convert writes the framing as the model's input.face."""
    from conftest import need

    from fer_tools.realfaces import default_dir

    if default_dir() is None:
        need("the real-face set (../shared/data/realfaces or FER_REALFACES)")
    out = tmp_path / "cam"
    proc = tool("train", "--arch", "tiny", "--epochs", "1", "--camera", "0.5",
                "--class-balance", "0.5", "--realfaces-performers", "01-02", "--out", str(out),
                *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["face"]["found"] >= 200 and 0.9 < cfg["face"]["box_side"] < 1.1
    assert cfg["realfaces_info"]["performers"] == ["01", "02"]
    assert cfg["realfaces_info"]["faces"] >= 90 and "real faces:" in proc.stdout
    tfl = tmp_path / "cam.tflite"
    proc = tool("convert", str(out / "model.keras"), "--out", str(tfl), "--calibration", "200",
                "--limit-eval", "200", "--accept", "--data", str(DATA))
    assert proc.returncode == 0, proc.stderr[-2000:]
    face = json.loads(tfl.with_suffix(".json").read_text())["input"]["face"]
    assert face["crop_scale"] == cfg["face"]["prep"]["crop_scale"] and face["equalize"]
    assert face["trained_on"].startswith("camera views")
    proc = tool("train", "--arch", "tiny", "--epochs", "1", "--realfaces-performers", "x-y",
                "--out", str(tmp_path / "bad"), *SMALL)
    assert proc.returncode == 2 and "performers" in proc.stderr

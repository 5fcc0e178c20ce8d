"""The flicker study: its jittered crops, its counting, and a small run on real faces with
the shipped int8 model and the device's own smoother."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_data

from fer_pi.vision.modelfile import resolve_model
from fer_pi.vision.smooth import SmoothSettings
from fer_tools.data import default_data_dir, file_sha256
from fer_tools.flicker import changes, frames_to_follow, jittered_crops, measure, swap_partner

ROOT = Path(__file__).resolve().parents[2]
DATA = default_data_dir()  # needs_data (conftest) makes a test need it


def face() -> np.ndarray:
    """A synthetic 48x48 face-like pattern with edges, so a moved box shows."""
    yy, xx = np.mgrid[:48, :48]
    img = 128 + 60 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    img[30:34, 14:34] = 20  # a mouth
    return img.astype(np.uint8)


def test_without_jitter_or_noise_the_crop_is_the_face():
    crops = jittered_crops(face(), 3, 0.0, 0.0, np.random.default_rng(0))
    assert np.abs(crops[0].astype(int) - face()).mean() < 3
    assert (crops[0] == crops[1]).all() and (crops[1] == crops[2]).all()


def test_jitter_moves_the_box_only_at_each_detection():
    crops = jittered_crops(face(), 6, 0.05, 0.0, np.random.default_rng(1), detect_every=3)
    assert (crops[0] == crops[1]).all() and (crops[1] == crops[2]).all()
    assert not (crops[2] == crops[3]).all()
    assert (crops[3] == crops[5]).all()


def test_changes_skip_a_settling_face_and_follow_counts_frames():
    shown = ["sad", "happy", "happy", "sad", "sad", "happy"]
    assert changes(shown) == 3
    assert changes(shown, settle=2) == 2  # the first correction is not flicker
    assert frames_to_follow(shown, 3, "happy") == 2
    assert frames_to_follow(shown, 3, "fear") is None


def test_swap_partner_is_a_face_the_model_labels_differently():
    pred = np.array([3, 3, 4, 3])
    partner = swap_partner(pred, np.arange(4))
    assert list(partner) == [2, 2, 3, 2]  # the next one round the ring
    assert list(swap_partner(np.array([1, 1]), np.arange(2))) == [-1, -1]


def test_smoothing_removes_flicker_between_two_close_labels():
    """A still face the model cannot decide between happy and neutral from frame to frame:
    raw labels change every frame, the default smoother shows one label."""
    frames = 60
    p = np.full((1, frames, 7), 0.02, np.float32)
    p[0, 0::2, 3], p[0, 0::2, 6] = 0.50, 0.40
    p[0, 1::2, 3], p[0, 1::2, 6] = 0.40, 0.50
    y = np.array([3])
    raw = measure(p, y, SmoothSettings.off(), 30.0, np.array([-1]))
    steady = measure(p, y, SmoothSettings(), 30.0, np.array([-1]))
    assert raw["changes_per_min"] == pytest.approx(30 * 60)  # every frame, after the first second
    assert steady["changes_per_min"] == 0.0
    assert steady["uncertain_share"] == 0.0 and raw["never_followed"] is None


@needs_data
def test_study_runs_on_real_faces_with_the_shipped_model():
    proc = subprocess.run([sys.executable, "-m", "fer_tools.flicker", "--faces", "14",
                           "--frames", "12", "--fps", "6", "--json", "--data", str(DATA)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[14/14] faces classified" in proc.stderr
    out = json.loads(proc.stdout)
    rows = {r["setting"]: r for r in out["rows"]}
    assert out["faces"] == 14 and out["split"] == "PublicTest (validation)"
    raw = rows["raw (--no-smooth)"]
    assert raw["uncertain_share"] == 0.0 and raw["follow_frames_p50"] is not None
    assert rows["uncertain_lead = 0.15"]["uncertain_share"] >= rows["defaults"]["uncertain_share"]
    for r in out["rows"]:
        assert 0.0 <= r["accuracy_shown"] <= 1.0 and r["changes_per_min"] >= 0.0


@needs_data
def test_study_reuses_its_cache_and_survives_a_broken_one(tmp_path):
    cache = tmp_path / "probs.npz"
    args = [sys.executable, "-m", "fer_tools.flicker", "--faces", "7", "--frames", "6",
            "--fps", "3", "--json", "--data", str(DATA), "--cache", str(cache)]
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and cache.is_file(), first.stderr[-2000:]
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert f"probabilities from {cache}" in again.stderr and "faces classified" not in again.stderr
    assert json.loads(again.stdout)["rows"] == json.loads(first.stdout)["rows"]
    other = subprocess.run([*args, "--jitter", "0.05"], capture_output=True, text=True,
                           timeout=300)
    assert "is from another model, data or setting: classifying again" in other.stderr
    cache.write_bytes(b"not an npz")
    broken = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert broken.returncode == 0 and "cannot be read" in broken.stderr
    unwritable = subprocess.run([*args[:-1], str(tmp_path / "no" / "such" / "dir.npz")],
                                capture_output=True, text=True, timeout=300)
    assert unwritable.returncode == 2
    assert unwritable.stderr.strip().splitlines()[-1].startswith(
        f"flicker: error: cannot write the cache {tmp_path / 'no' / 'such' / 'dir.npz'}: ")


def test_study_refuses_a_missing_model_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fer_tools.flicker", "--model",
                           str(tmp_path / "none.tflite")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"flicker: error: model file not found: {tmp_path / 'none.tflite'}"


def test_the_published_study_is_of_the_shipped_defaults_and_model():
    """models/flicker_vgg.json and docs/steadiness.md's table must describe what ships: the
    smoother's current defaults on the default model's current file."""
    study = json.loads((ROOT / "models" / "flicker_vgg.json").read_text())
    rows = {r["setting"]: r for r in study["rows"]}
    defaults = rows["defaults"]
    assert {k: defaults[k] for k in asdict(SmoothSettings())} == asdict(SmoothSettings())
    assert study["model_sha256"] == file_sha256(resolve_model("default"))
    readme = (ROOT / "docs" / "steadiness.md").read_text()
    row = next(ln for ln in readme.splitlines() if ln.startswith("| **defaults** ("))
    assert f"**{defaults['changes_per_min']:.1f}**" in row
    assert f"{100 * defaults['accuracy_shown']:.1f} %" in row
    assert f"{defaults['follow_frames_p50']:.0f} / {defaults['follow_frames_p90']:.0f}" in row
    raw = rows["raw (--no-smooth)"]
    raw_row = next(ln for ln in readme.splitlines() if ln.startswith("| raw labels ("))
    assert f"| {raw['changes_per_min']:.0f} |" in raw_row

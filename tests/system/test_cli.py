"""fer-pi as a user meets it: help, config, and one clear line for each bad input."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli


def test_help_documents_every_setting():
    from dataclasses import fields

    from fer_pi.app.config import SECTIONS

    proc = run_cli("--help")
    assert proc.returncode == 0
    for cls in SECTIONS.values():
        for f in fields(cls):
            if f.metadata.get("flag"):
                assert f.metadata["flag"] in proc.stdout
    assert "exit codes:" in proc.stdout


def test_print_config_round_trips(tmp_path):
    proc = run_cli("--print-config", "--threads", "3", "--windowed")
    assert proc.returncode == 0, proc.stderr
    assert "threads = 3" in proc.stdout and "fullscreen = false" in proc.stdout
    cfg = tmp_path / "c.toml"
    cfg.write_text(proc.stdout)
    again = run_cli("--config", str(cfg), "--print-config")
    assert again.returncode == 0 and again.stdout == proc.stdout


def test_command_line_overrides_the_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nthreads = 4\n[detect]\nmax_faces = 3\n")
    proc = run_cli("--config", str(cfg), "--threads", "1", "--print-config")
    assert proc.returncode == 0, proc.stderr
    assert "threads = 1" in proc.stdout and "max_faces = 3" in proc.stdout


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[detect]\nscale_factr = 1.2\n", "unknown key detect.scale_factr"),
        ("[detekt]\n", "unknown section [detekt]"),
        ("[detect]\nmin_neighbors = \"five\"\n", "detect.min_neighbors must be an integer"),
        ("[detect]\nscale_factor = 0.9\n", "detect.scale_factor = 0.9 is out of range (1.01 .. 2.0)"),
        ("[model]\nthreads = 0\n", "model.threads = 0 is out of range (1 .. 16)"),
        ("[board]\nfullscreen = 1\n", "board.fullscreen must be true or false"),
        ("[output]\npath = \"out.txt\"\n", "must end in .jsonl or .csv"),
        ("[source\n", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_with_the_key(tmp_path, toml, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    proc = run_cli("--config", str(cfg), "--check-config")
    assert proc.returncode == 2
    assert needle in proc.stderr and str(cfg) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_check_config_ok():
    proc = run_cli("--check-config")
    assert proc.returncode == 0 and "config OK" in proc.stdout


def _one_line_error(proc, code, *needles):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    errors = [x for x in proc.stderr.splitlines() if x.startswith("fer-pi:")]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n in errors[0]
    assert "Traceback" not in proc.stderr


def test_missing_video(tmp_path):
    missing = tmp_path / "nope.mp4"
    _one_line_error(run_cli("--video", str(missing), "--headless"), 3, "video not found",
                    str(missing))


def test_unreadable_video(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 1000)
    _one_line_error(run_cli("--video", str(bad), "--headless"), 3, str(bad))


def test_absent_camera():
    _one_line_error(run_cli("--camera", "57", "--headless"), 3, "camera 57")


def test_no_source_given():
    _one_line_error(run_cli("--headless"), 2, "no source")


def test_missing_model(clips, tmp_path):
    missing = tmp_path / "missing.tflite"
    _one_line_error(run_cli("--video", str(clips["empty"]), "--headless", "--model",
                            str(missing)), 4, "model file not found", str(missing))


def test_unknown_model_name(clips):
    _one_line_error(run_cli("--video", str(clips["empty"]), "--headless", "--model", "nosuch"),
                    4, "unknown model 'nosuch'")


@pytest.mark.parametrize("content", [b"", b"TFL3 this is not a flatbuffer" * 10])
def test_corrupt_model(clips, tmp_path, content):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(content)
    _one_line_error(run_cli("--video", str(clips["empty"]), "--headless", "--model", str(bad)),
                    4, str(bad))


def test_model_with_wrong_input(clips, tmp_path):
    tf = pytest.importorskip("tensorflow", reason="building a wrong-shape model needs the train extra")
    keras = pytest.importorskip("keras")
    m = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(7, activation="softmax")])
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    path = tmp_path / "rgb64.tflite"
    path.write_bytes(conv.convert())
    _one_line_error(run_cli("--video", str(clips["empty"]), "--headless", "--model", str(path)),
                    4, "grayscale", str(path))


def test_unwritable_output(clips, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "sub" / "r.jsonl"
    _one_line_error(run_cli("--video", str(clips["empty"]), "--headless", "--output", str(out)),
                    5, str(out))


def test_demo_runs_headless_without_a_display(tmp_path):
    out = tmp_path / "demo.jsonl"
    proc = run_cli("--demo", "--output", str(out), "--max-frames", "60",
                   env={"DISPLAY": "", "WAYLAND_DISPLAY": "", "XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 60
    assert sum(len(r["faces"]) == 1 for r in recs) >= 55
    assert "frame    0" in proc.stdout


def test_list_models_names_every_shipped_model_and_the_default():
    from fer_pi.vision.modelfile import DEFAULT_MODEL, shipped_models

    proc = run_cli("--list-models")
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert [ln.split(":")[0].split(" ")[0] for ln in lines] == list(shipped_models())
    assert any(ln.startswith(f"{DEFAULT_MODEL} (default):") for ln in lines)
    assert all("PublicTest (validation)" in ln for ln in lines)
    assert all("; confidence calibrated " in ln for ln in lines)


def test_camera_rotate_turns_an_upside_down_clip_back(tmp_path, face):
    """A clip from a camera mounted upside down: no face until --camera-rotate 180."""
    import cv2
    from conftest import TWO_FACES

    from fer_pi.sources.demo import compose, write_clip

    clip = write_clip(tmp_path / "upside_down.avi",
                      (cv2.rotate(compose(TWO_FACES, face=face), cv2.ROTATE_180) for _ in range(5)))
    faces = {}
    for rotate in ("0", "180"):
        out = tmp_path / f"r{rotate}.jsonl"
        proc = run_cli("--video", str(clip), "--headless", "--output", str(out),
                       "--camera-rotate", rotate)
        assert proc.returncode == 0, proc.stderr
        faces[rotate] = [len(json.loads(x)["faces"]) for x in out.read_text().splitlines()]
    # a new face is shown from its third sighting on (detect.confirm_frames)
    assert faces == {"0": [0] * 5, "180": [0, 0, 2, 2, 2]}

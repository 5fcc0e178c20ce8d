"""The onset development set's builder and study (fer_tools.onsets) on a small generated
case: two pictures of one made-up performer, never the real set."""

from __future__ import annotations

import numpy as np
import pytest

from fer_pi.sources.demo import astronaut_bgr
from fer_tools import onsets as on


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("realfaces")
    face = cv2.resize(astronaut_bgr(), (256, 256), interpolation=cv2.INTER_AREA)
    (root / "p").mkdir()
    cv2.imwrite(str(root / "p" / "9901a01.png"), face)
    cv2.imwrite(str(root / "p" / "9901b01.png"), cv2.flip(face, 1))  # "another expression"
    (root / "MANIFEST.tsv").write_text(
        "local_file\tlabel\tperformer\np/9901a01.png\tneutral\t99\np/9901b01.png\thappy\t99\n")
    return root


def test_the_builder_makes_one_onset_per_expression_with_a_truth_per_frame(tiny_set):
    from fer_tools.realfaces import manifest_rows

    onsets = on.choose(manifest_rows(tiny_set), {"99"}, per_class=1, seed=0)
    assert [(o.neutral, o.expression, o.label) for o in onsets] == [
        ("p/9901a01.png", "p/9901b01.png", "happy")]
    frames = list(on.render(onsets[0], tiny_set, 10.0))
    assert len(frames) == round(on.duration_s() * 10)
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for _, f, _ in frames)
    up, down = on.switch_times()
    truths = [(t, g) for t, _, g in frames]
    assert all(g == ("happy" if up <= t < down else "neutral") for t, g in truths)
    # the same moment looks the same at any rate (motion is a function of time)
    at30 = {round(t, 3): f for t, f, _ in on.render(onsets[0], tiny_set, 30.0)}
    at10 = {round(t, 3): f for t, f, _ in frames}
    assert np.abs(at30[1.0].astype(int) - at10[1.0].astype(int)).mean() < 3


def test_the_study_runs_the_device_pipeline_and_reports_every_setting(tiny_set, tmp_path):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "fer_tools.onsets", "--realfaces",
                           str(tiny_set), "--performers", "99", "--fps", "10", "--cache",
                           str(tmp_path), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    rows = {r["setting"]: r for r in out["rates"]["10"]["rows"]}
    raw = rows["raw (--no-smooth)"]
    assert raw["uncertain_share"] == 0.0 and 0 < raw["frames_right_raw"] <= 1
    assert raw["frames_right_shown"] == pytest.approx(raw["frames_right_raw"])
    assert rows["defaults"]["changes_per_100_frames"] <= raw["changes_per_100_frames"]
    curve = out["rates"]["10"]["lead_curve"]
    assert curve[0]["coverage"] == 1.0 and all(0 <= c["coverage"] <= 1 for c in curve)
    assert (tmp_path / "onsets_10fps.npz").is_file()  # kept: a second run reuses it


def test_the_published_onset_study_is_of_the_shipped_defaults_and_model():
    """models/onsets_vgg.json (docs/steadiness.md's tables come from it) describes what
    ships: the smoother's current defaults on the default model's current file."""
    import json
    from dataclasses import asdict

    from conftest import ROOT

    from fer_pi.vision.modelfile import resolve_model
    from fer_pi.vision.smooth import SmoothSettings
    from fer_tools.data import file_sha256

    study = json.loads((ROOT / "models" / "onsets_vgg.json").read_text())
    assert study["defaults"] == asdict(SmoothSettings())
    assert study["model_sha256"] == file_sha256(resolve_model("default"))
    doc = (ROOT / "docs" / "steadiness.md").read_text()
    for fps, block in study["rates"].items():
        d = next(r for r in block["rows"] if r["setting"] == "defaults")
        row = next(ln for ln in doc.splitlines() if ln.startswith(f"| **{fps} FPS** |"))
        assert f"{100 * d['frames_right_shown']:.1f} %" in row, (fps, row)


def test_probabilities_are_collected_every_frame_and_cached_per_pipeline(tiny_set, tmp_path):
    """The replay applies classify.max_hz itself, so the collected probabilities are read on
    every frame; the cache is another one when the finding settings or the vision code
    change (they move the boxes, so the crops), not only the model or the rendering."""
    from dataclasses import replace
    from pathlib import Path

    from fer_pi.app.config import Config
    from fer_pi.vision.classify import Classifier
    from fer_pi.vision.modelfile import resolve_model
    from fer_tools.realfaces import manifest_rows

    cfg = Config()
    assert cfg.classify.max_hz > 0  # the device's default thins readings ...
    assert on.collecting(cfg).classify.max_hz == 0.0  # ... the collection does not
    assert not on.collecting(cfg).smooth.enabled
    model = resolve_model("default")
    clf = Classifier(model, threads=1, flip_tta=True)
    onsets = on.choose(manifest_rows(tiny_set), {"99"}, per_class=1, seed=0)

    def key(c):
        return on.cache_key(onsets, 10.0, model, clf, tiny_set, c)

    base = key(cfg)
    assert key(cfg) == base
    assert key(replace(cfg, classify=replace(cfg.classify, max_hz=10.0))) == base  # replayed
    assert key(replace(cfg, board=replace(cfg.board, mirror=True))) == base  # drawing only
    assert key(replace(cfg, detect=replace(cfg.detect, min_neighbors=4))) != base
    assert key(replace(cfg, track=replace(cfg.track, detect_every=3))) != base
    # the vision code: an edit to any of its files is another pipeline
    import shutil

    import fer_pi.vision as vision

    code = tmp_path / "vision"
    shutil.copytree(Path(vision.__file__).parent, code)
    assert on.pipeline_digest(cfg, code) == on.pipeline_digest(cfg)
    (code / "detect.py").write_text((code / "detect.py").read_text() + "\n# edited\n")
    assert on.pipeline_digest(cfg, code) != on.pipeline_digest(cfg)

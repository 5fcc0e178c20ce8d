"""fer-pi as a library (#35): fer_pi.analyze on a picture gives the labels fer-pi --images
gives; --annotate writes a marked-up copy of a video at the input's rate, size and frame
count, its boxes where the results file says."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import run_cli

from fer_pi.sources.demo import Placement, background, compose, write_clip


@pytest.fixture(scope="module")
def photo(tmp_path_factory, face):
    folder = tmp_path_factory.mktemp("photo")
    path = folder / "photo.png"
    cv2.imwrite(str(path), compose([Placement(120, 40, 400)], face=face))
    return path


def test_analyze_gives_the_labels_fer_pi_images_gives(photo, tmp_path):
    """As a user types it: python -c "import fer_pi, cv2; print(fer_pi.analyze(...))"."""
    code = (f"import fer_pi, cv2, json; faces = fer_pi.analyze(cv2.imread({str(photo)!r})); "
            "print(json.dumps([f.to_dict() for f in faces]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    faces = json.loads(proc.stdout.strip().splitlines()[-1])
    out = tmp_path / "r.jsonl"
    assert run_cli("--images", str(photo), "--headless", "--output", str(out)).returncode == 0
    (rec,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(faces) == len(rec["faces"]) == 1
    assert faces[0]["label"] == rec["faces"][0]["label"]
    assert faces[0]["box"] == rec["faces"][0]["box"]
    assert faces[0]["probabilities"] == pytest.approx(rec["faces"][0]["probs"], abs=1e-4)
    assert faces[0]["landmarks"] is None  # Haar gives none


def test_analyzer_takes_arrays_paths_rgb_and_settings(photo):
    import fer_pi

    bgr = cv2.imread(str(photo))
    with fer_pi.Analyzer(model={"flip_tta": False}) as fer:
        from_array = fer.analyze(bgr)
        assert fer.analyze(str(photo)) == from_array
        assert fer.analyze(bgr[:, :, ::-1].copy(), channels="rgb") == from_array
        assert fer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[0].box == from_array[0].box
        assert fer.analyze(background(640, 480)) == []  # a picture without a face
        with pytest.raises(fer_pi.AnalyzeError, match="numpy array or a path"):
            fer.analyze([1, 2, 3])
        with pytest.raises(fer_pi.AnalyzeError, match="not found"):
            fer.analyze("no-such-photo.png")
        with pytest.raises(fer_pi.AnalyzeError, match="H×W"):
            fer.analyze(np.zeros((4, 4, 5), np.uint8))
    from fer_pi.app.config import ConfigError

    with pytest.raises(ConfigError, match="detect.min_size"):
        fer_pi.Analyzer(detect={"min_size": 1})
    with pytest.raises(ConfigError, match="unknown key detect.nope"):
        fer_pi.analyze(bgr, detect={"nope": 1})


def test_yunet_gives_landmarks_haar_does_not(photo):
    """The five points, on the face, where the detector gives them (YuNet)."""
    import fer_pi

    bgr = cv2.imread(str(photo))
    (haar,) = fer_pi.analyze(bgr)
    assert haar.landmarks is None
    (yn,) = fer_pi.analyze(bgr, detect={"detector": "yunet"})
    assert yn.landmarks is not None and len(yn.landmarks) == 5
    x, y, w, h = yn.box
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in yn.landmarks)
    (rx, _), (lx, _) = yn.landmarks[:2]
    assert rx < lx  # the face's right eye is on the picture's left


def test_importing_fer_pi_stays_light():
    """The API is there by name, but `import fer_pi` loads no model, OpenCV or TensorFlow."""
    code = ("import sys, fer_pi; "
            "print(sorted(m for m in ('cv2', 'tensorflow', 'ai_edge_litert', 'fer_pi.app.api')"
            " if m in sys.modules)); assert callable(fer_pi.analyze); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "False False"]  # the device imports no TF


def test_annotated_video_has_the_inputs_frames_size_and_rate(tmp_path, face):
    frames = [compose([Placement(40 + 8 * i, 30, 380)], face=face) for i in range(24)]
    clip = write_clip(tmp_path / "in.avi", frames, fps=12.0)
    out, results = tmp_path / "out.mp4", tmp_path / "r.jsonl"
    proc = run_cli("--video", str(clip), "--headless", "--annotate", str(out), "--output",
                   str(results))
    assert proc.returncode == 0, proc.stderr
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    got = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        got.append(img)
    cap.release()
    assert len(got) == 24 and got[0].shape == frames[0].shape
    recs = [json.loads(x) for x in results.read_text().splitlines()]
    shown = [(i, r["faces"][0]) for i, r in enumerate(recs) if r["faces"]]
    assert len(shown) >= 15
    for i, f in shown:  # the box's edge is drawn where the results say (its colour, not
        x, y, w, h = f["box"]  # the picture's): the left edge differs from the input there
        edge = got[i][y + h // 4: y + 3 * h // 4, x].astype(int)
        inside = frames[i][y + h // 4: y + 3 * h // 4, x].astype(int)
        assert np.abs(edge - inside).mean() > 30, i


def test_annotated_pictures_and_privacy(tmp_path, face):
    folder = tmp_path / "in"
    folder.mkdir()
    img = compose([Placement(120, 40, 400)], face=face)
    cv2.imwrite(str(folder / "a.jpg"), img)
    out = tmp_path / "marked"
    proc = run_cli("--images", str(folder), "--headless", "--annotate", str(out), "--privacy",
                   "no_picture")
    assert proc.returncode == 0, proc.stderr
    marked = cv2.imread(str(out / "a.png"))
    assert marked.shape == img.shape
    # no pixel of the picture kept: the background is plain away from the box and label
    corner = marked[-40:, -40:].reshape(-1, 3)
    assert (corner == corner[0]).all()


def test_annotate_needs_a_video_suffix(tmp_path, clips):
    proc = run_cli("--video", str(clips["empty"]), "--headless", "--annotate",
                   str(tmp_path / "out.txt"))
    assert proc.returncode == 5 and "annotated video must end in" in proc.stderr

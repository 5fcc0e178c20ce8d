"""Accuracy where users meet it (fer-eval --end-to-end), and train/serve parity: the device
cuts and normalises faces as the model's metadata says its training faces were."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import fer2013_dir

from fer_pi.app.assemble import build, face_prep
from fer_pi.app.config import from_dict
from fer_pi.sources.demo import Placement, background, compose, write_clip
from fer_pi.vision.classify import Classifier
from fer_pi.vision.detect import HaarDetector, to_gray
from fer_pi.vision.modelfile import ModelError, read_model_info, resolve_model
from fer_pi.vision.prepare import FacePrep


def e2e(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_tools.evaluate", "--end-to-end", *args,
                           "--quiet"], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, face):
    """A folder per label: the demo photo at several places and sizes under the label the
    model gives it, the same pictures under another label, two pictures with no face, one
    unreadable file and one clip."""
    root = tmp_path_factory.mktemp("set")
    clf = Classifier(resolve_model("default"), flip_tta=True)
    pictures = [compose([Placement(60 + 40 * i, 30 + 10 * i, 360 + 20 * i)], face=face)
                for i in range(4)]
    det = HaarDetector.from_config(from_dict({}).detect)
    prep = clf.info.face
    said = []
    for img in pictures:
        gray = to_gray(img)
        (box,) = det.detect(gray)
        said.append(clf.info.labels[int(np.argmax(clf.probabilities(prep.crop(gray, box))))])
    other = next(x for x in ("sad", "happy") if x not in said)
    for label in sorted(set(said)) + [other]:
        (root / label).mkdir(exist_ok=True)
    for i, (img, label) in enumerate(zip(pictures, said, strict=True)):
        cv2.imwrite(str(root / label / f"p{i}.jpg"), img)
        cv2.imwrite(str(root / other / f"q{i}.jpg"), img)
    cv2.imwrite(str(root / other / "empty1.png"), background(640, 480))
    cv2.imwrite(str(root / other / "empty2.png"), background(640, 480))
    (root / other / "broken.jpg").write_bytes(b"not a picture")
    write_clip(root / said[0] / "clip.avi",
               (compose([Placement(100 + 2 * i, 40, 400)], face=face) for i in range(20)))
    return root, said, other


def test_end_to_end_on_a_labelled_folder(labelled, tmp_path):
    root, said, other = labelled
    proc = e2e(str(root), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (out,) = tmp_path.glob("endtoend_*.json")
    res = json.loads(out.read_text())["scores"][read_model_info(resolve_model("default")).name]
    p = res["pictures"]
    # 4 pictures under the model's own label, the same 4 under another, 2 with no face
    assert p["total"] == 11 and p["unreadable"] == 1 and p["scored"] == 10
    assert p["faces_found"] == 8
    assert p["accuracy"] == pytest.approx(4 / 10) and p["accuracy_of_found"] == pytest.approx(0.5)
    assert p["recall"][other] == 0.0
    assert sum(map(sum, p["confusion"])) == 8
    c = res["clips"]
    assert c["scored"] == 1 and c["frames"] == 20 and c["frames_with_face"] >= 15
    assert c["per_clip"][0]["clip_label"] is not None
    assert 0 <= c["raw_frame_accuracy"] <= 1 and c["changes_per_100_frames"] >= 0
    png = tmp_path / out.name.replace("endtoend_", "confusion_endtoend_").replace(".json", ".png")
    try:
        import matplotlib  # noqa: F401  (the train extra brings it; a device install has none)

        assert png.is_file()
    except ImportError:
        assert not png.exists() and "no confusion PNG" in proc.stderr
    assert f"accuracy {100 * 4 / 10:.1f} %" in proc.stdout


def test_a_manifest_and_its_mistakes(labelled, tmp_path):
    root, said, _ = labelled
    good = tmp_path / "m.tsv"
    good.write_text(f"local_file\tlabel\tperformer\n{root / said[0] / 'p0.jpg'}\t{said[0]}\ta\n")
    proc = e2e(str(good))
    assert proc.returncode == 0, proc.stderr
    assert "accuracy 100.0 %" in proc.stdout
    for text, needle in [
        ("local_file\tlabel\nnowhere.jpg\thappy\n", "line 2 names a missing file"),
        (f"local_file\tlabel\n{root / said[0] / 'p0.jpg'}\tbored\n", "unknown label 'bored'"),
        ("file_name\temotion\nx.jpg\thappy\n", "needs a 'label' column"),
    ]:
        bad = tmp_path / "bad.tsv"
        bad.write_text(text)
        proc = e2e(str(bad))
        assert proc.returncode == 2, proc.stderr
        (line,) = [x for x in proc.stderr.splitlines() if "error:" in x]
        assert needle in line and "Traceback" not in proc.stderr


def test_an_empty_folder_and_a_folder_not_named_for_a_label(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = e2e(str(tmp_path / "empty"))
    assert proc.returncode == 2 and "no labelled pictures or clips" in proc.stderr
    (tmp_path / "odd" / "bored").mkdir(parents=True)
    proc = e2e(str(tmp_path / "odd"))
    assert proc.returncode == 2 and "unknown label 'bored'" in proc.stderr


# -- parity ----------------------------------------------------------------------------

def test_what_reaches_the_model_is_framed_and_normalised_as_training_faces():
    """FER2013 faces (validation split) placed twice their size into larger frames: the
    device's detector and its crop with the shipped model's metadata give back the training
    face; the crop of fer-pi before models said how (10 % margin, not equalised) does not."""
    data = fer2013_dir()
    x = np.load(data / "PublicTest.npz")["x"][:300]
    model_prep = read_model_info(resolve_model("default")).face
    assert model_prep.equalize and 0.95 <= model_prep.scale <= 1.1
    det = HaarDetector(min_size=48)
    corr = {"model": [], "legacy": []}
    spread = []
    for face in x:
        big = cv2.resize(face, (96, 96), interpolation=cv2.INTER_LINEAR)
        frame = cv2.copyMakeBorder(big, 96, 96, 96, 96, cv2.BORDER_REFLECT101)
        # the frame as a camera's: darker and flatter than an equalised training face
        frame = (frame.astype(np.float32) * 0.5 + 40).astype(np.uint8)
        near = [b for b in det.detect(frame) if abs(b.center[0] - 144) < 30
                and abs(b.center[1] - 144) < 30]
        if not near:
            continue
        box = max(near, key=lambda b: b.w)
        for name, prep in (("model", model_prep), ("legacy", FacePrep())):
            crop = prep.crop(frame, box)
            corr[name].append(np.corrcoef(crop.ravel(), face.ravel())[0, 1])
            if name == "model":
                spread.append((crop.mean(), crop.std(), face.mean(), face.std()))
    assert len(corr["model"]) >= 150
    model, legacy = np.median(corr["model"]), np.median(corr["legacy"])
    assert model >= 0.75 and model >= legacy + 0.1, (model, legacy)  # the same framing
    m = np.median(np.array(spread), axis=0)  # the same normalisation: equalised as FER2013
    assert abs(m[0] - m[2]) < 10 and abs(m[1] - m[3]) < 8, m


def test_the_device_applies_the_metadata_and_a_setting_overrides_it(tmp_path):
    src = resolve_model("default")
    model = tmp_path / "m.tflite"
    shutil.copy(src, model)
    meta = json.loads(src.with_suffix(".json").read_text())
    meta["input"]["face"] = {"crop_scale": 1.5, "crop_shift_y": 0.1, "equalize": False}
    model.with_suffix(".json").write_text(json.dumps(meta))
    clf = Classifier(model)
    assert clf.info.face == FacePrep(1.5, 0.1, False)
    cfg = from_dict({"model": {"path": str(model)}})
    assert build(cfg, clf).prep == FacePrep(1.5, 0.1, False)  # the pipeline cuts as it says
    over = from_dict({"model": {"path": str(model)}, "detect": {"margin": 0.0,
                                                                 "equalize": "on"}})
    assert face_prep(over, clf) == FacePrep(1.0, 0.0, True)
    meta["input"]["face"] = {"crop_scale": "wide"}
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="input.face.crop_scale"):
        Classifier(model)


def test_a_crop_follows_the_prep():
    gray = np.tile(np.arange(200, dtype=np.uint8), (200, 1))
    from fer_pi.core.records import FaceBox

    box = FaceBox(80, 80, 40, 40)
    wide = FacePrep(2.0, 0.0, False).crop(gray, box, (48, 48))
    tight = FacePrep(1.0, 0.0, False).crop(gray, box, (48, 48))
    assert np.ptp(wide.astype(int)) > 1.8 * np.ptp(tight.astype(int))  # twice the span
    eq = FacePrep(1.0, 0.0, True).crop(gray, box, (48, 48))
    assert eq.min() == 0 and eq.max() == 255


def test_the_device_applies_the_prior_correction_in_the_metadata(tmp_path, face):
    """output.prior_correction: the probabilities times the factors, renormalized, before the
    temperature; labels move towards the class a factor favours. Bad factors are refused."""
    src = resolve_model("default")
    model = tmp_path / "m.tflite"
    shutil.copy(src, model)
    meta = json.loads(src.with_suffix(".json").read_text())
    meta.get("confidence", {}).update(temperature=1.0, temperature_single=1.0)
    model.with_suffix(".json").write_text(json.dumps(meta))
    crop = np.asarray(cv2.resize(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)[60:300, 140:380],
                                 (48, 48)), np.uint8)
    plain = Classifier(model).probabilities(crop)
    factors = [1.0] * 7
    factors[1] = 50.0  # disgust
    meta["output"] = {"prior_correction": {"power": 1.0, "factors": factors}}
    model.with_suffix(".json").write_text(json.dumps(meta))
    corrected = Classifier(model).probabilities(crop)
    want = plain * np.array(factors)
    assert np.allclose(corrected, want / want.sum(), atol=1e-5)
    meta["output"] = {"prior_correction": {"factors": [1.0] * 6}}
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="prior_correction"):
        Classifier(model)


def test_turned_pictures_are_scored_per_angle(tmp_path, face):
    """--turn: each picture turned by each angle on a padded canvas; Haar loses the face
    turned by 40 degrees where YuNet keeps it (the per-angle figures are fer-eval's)."""
    from fer_tools.endtoend import parse_turns, turned

    big = turned(face, 0)
    assert big.shape[0] == face.shape[0] * 3 // 2 and np.array_equal(
        big[128:640, 128:640], face)
    assert turned(face, 40).shape == big.shape
    with pytest.raises(Exception, match="--turn"):
        parse_turns("0,abc")
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.jpg"), face)
    found = {}
    for det in ("haar", "yunet"):
        proc = e2e(str(tmp_path), "--turn", "0,40", "--detector", det, "--out", str(tmp_path))
        assert proc.returncode == 0, proc.stderr
        (path,) = tmp_path.glob(f"endtoend_*_{tmp_path.name}_{det}_turned.json")
        out = json.loads(path.read_text())
        assert out["turns"] == [0.0, 40.0] and out["detect"]["detector"] == det
        found[det] = [out["scores"][f"{out['model']} turned {a}"]["pictures"]["faces_found"]
                      for a in (0, 40)]
    assert found == {"haar": [1, 0], "yunet": [1, 1]}

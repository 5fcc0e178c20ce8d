"""The headless pipeline on real clips with the shipped int8 model and the real cascade."""

from __future__ import annotations

import json

import pytest
from conftest import HALF_OUT, TWO_FACES, expected_box, moving_placements, replay, run_cli

from fer_pi.app.config import DetectConfig
from fer_pi.app.loop import run
from fer_pi.outputs.results import frame_record
from fer_pi.sources import VideoFile
from fer_pi.sources.demo import Placement, compose, write_clip
from fer_pi.vision.classify import Classifier
from fer_pi.vision.detect import HaarDetector
from fer_pi.vision.pipeline import Pipeline


def make_pipeline(model_path, **detect):
    d = DetectConfig(**detect)
    det = HaarDetector(d.scale_factor, d.min_neighbors, d.min_size, d.max_faces, d.detect_width)
    return Pipeline(det, Classifier(model_path, threads=2))


def test_moving_face_is_found_where_it_was_drawn(clips, model_path, reference_box):
    results = replay(clips["moving"], make_pipeline(model_path))
    placements = moving_placements()
    assert len(results) == len(placements)
    found = [r for r in results if len(r.faces) == 1]
    assert len(found) >= 0.9 * len(results), "the face must be found in nearly every frame"
    for r in found:
        want = expected_box(reference_box, placements[r.frame.index])
        got = r.faces[0].box
        tol = 0.25 * want.w
        assert abs(got.center[0] - want.center[0]) <= tol
        assert abs(got.center[1] - want.center[1]) <= tol
        assert 0.7 * want.w <= got.w <= 1.4 * want.w
    # the face grows through the clip, and the boxes follow it
    assert found[-1].faces[0].box.w > found[0].faces[0].box.w


def test_no_face_frames_give_no_faces(clips, model_path):
    results = replay(clips["empty"], make_pipeline(model_path))
    assert len(results) == 20
    assert sum(len(r.faces) for r in results) == 0


def test_two_faces_side_by_side(clips, model_path, reference_box):
    results = replay(clips["two"], make_pipeline(model_path))
    for r in results:
        assert len(r.faces) == 2
        wants = sorted((expected_box(reference_box, p) for p in TWO_FACES), key=lambda b: b.x)
        gots = sorted((f.box for f in r.faces), key=lambda b: b.x)
        for want, got in zip(wants, gots, strict=True):
            assert got.iou(want) > 0.5


def test_face_near_the_border_is_cropped_safely(clips, model_path, reference_box):
    results = replay(clips["half_out"], make_pipeline(model_path))
    want = expected_box(reference_box, HALF_OUT)
    assert any(len(r.faces) == 1 and r.faces[0].box.iou(want) > 0.5 for r in results)
    for r in results:
        for f in r.faces:
            assert abs(sum(f.prediction.probs) - 1.0) < 1e-3


def test_max_faces_keeps_the_largest(tmp_path, face, model_path, reference_box):
    big, small = Placement(0, 60, 380), Placement(360, 60, 280)
    clip = write_clip(tmp_path / "big_small.avi",
                      (compose([big, small], face=face) for _ in range(6)))
    both = replay(clip, make_pipeline(model_path))
    assert sum(len(r.faces) == 2 for r in both) >= 5, "both faces are there to choose from"
    results = replay(clip, make_pipeline(model_path, max_faces=1))
    assert all(len(r.faces) == 1 for r in results)
    want = expected_box(reference_box, big)
    assert all(r.faces[0].box.iou(want) > 0.6 for r in results)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_headless_output_schema_and_determinism(clips, tmp_path, suffix):
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}{suffix}"
        # faces shown from the first frame (no confirmation delay): every record has both
        proc = run_cli("--video", str(clips["two"]), "--headless", "--output", str(out),
                       "--confirm-frames", "1")
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_text())
    assert outs[0] == outs[1], "two runs on the same clip must write identical results"
    assert not list(tmp_path.glob("*.png")), "no image unless asked"
    if suffix == ".jsonl":
        lines = [json.loads(line) for line in outs[0].splitlines()]
        assert [rec["frame"] for rec in lines] == list(range(10))
        read: dict[int, list[float]] = {1: [], 2: []}  # when each face was classified
        for rec in lines:
            assert set(rec) == {"frame", "timestamp", "detected", "faces"}
            # detect_every 2; the scans between (scan_every 3) are skipped: nothing moved
            assert rec["detected"] == (rec["frame"] % 2 == 0)
            assert len(rec["faces"]) == 2
            assert sorted(f["track_id"] for f in rec["faces"]) == [1, 2]
            for f in rec["faces"]:
                assert set(f) == {"box", "label", "confidence", "probs", "track_id", "smoothed",
                                  "shown", "held_s", "classified"}
                if f["classified"]:
                    read[f["track_id"]].append(rec["timestamp"])
                assert f["shown"] in list(f["probs"]) + ["uncertain"]
                assert abs(sum(f["smoothed"].values()) - 1) < 1e-3
                assert len(f["box"]) == 4 and all(isinstance(v, int) for v in f["box"])
                assert list(f["probs"]) == ["angry", "disgust", "fear", "happy", "sad",
                                            "surprise", "neutral"]
                assert f["label"] == max(f["probs"], key=f["probs"].get)
                assert f["confidence"] == f["probs"][f["label"]]
                assert abs(sum(f["probs"].values()) - 1) < 1e-3
        # classify.max_hz 15: both faces read on the first frame, then at most every 1/15 s
        for times in read.values():
            assert times[0] == 0.0 and len(times) >= 3
            assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 1 / 15 - 1e-6
    else:
        rows = outs[0].splitlines()
        assert rows[0].startswith("frame,timestamp,faces,face,track_id,x,y,w,h,label")
        assert len(rows) == 1 + 10 * 2


def test_images_folder_source(tmp_path, face, model_path):
    import cv2

    from fer_pi.sources.demo import Placement, compose

    cv2.imwrite(str(tmp_path / "a.png"), compose([Placement(100, 40, 400)], face=face))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")  # skipped and counted
    cv2.imwrite(str(tmp_path / "c.png"), compose([], face=face))
    out = tmp_path / "r.jsonl"
    proc = run_cli("--images", str(tmp_path), "--headless", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [len(r["faces"]) for r in recs] == [1, 0]
    assert "skipping unreadable image" in proc.stderr and "b.jpg" in proc.stderr


def test_max_size_drops_faces_larger_than_the_limit(face, reference_box):
    from fer_pi.sources.demo import compose
    from fer_pi.vision.detect import HaarDetector, to_gray

    # the photo at 400 px: its face is about 93 * 400 / 512 = 73 px
    gray = to_gray(compose([Placement(100, 40, 400)], face=face))
    side = round(reference_box.w * 400 / 512)
    assert len(HaarDetector(detect_width=480).detect(gray)) == 1
    assert len(HaarDetector(detect_width=480, max_size=side + 20).detect(gray)) == 1
    assert HaarDetector(detect_width=480, max_size=side - 20).detect(gray) == []


def test_max_size_below_min_size_is_refused():
    from fer_pi.app.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="detect.max_size = 40 is below detect.min_size"):
        from_dict({"detect": {"max_size": 40, "min_size": 48}})


def test_a_wall_clock_step_bends_no_duration(clips):
    """A Pi has no battery clock: NTP steps its wall clock after boot. Camera frames carry
    a monotonic time as well, and held labels and card fades follow that one."""
    import dataclasses

    import pygame

    from fer_pi.app.assemble import build
    from fer_pi.app.config import from_dict
    from fer_pi.board.paint import Board, BoardStats
    from fer_pi.core.labels import LABELS

    def frames(path):
        src = VideoFile(path)
        src.open()
        try:
            while (f := src.read()) is not None:
                yield f
        finally:
            src.close()

    clip = list(frames(clips["moving"])) + list(frames(clips["empty"])) * 2  # 60 + 40 frames
    pipeline, board = build(from_dict({})), Board(LABELS)
    surface = pygame.Surface((800, 480))
    wall0, step_fwd, step_back = 1.7e9, 86400.0, -7200.0
    cards_after_faces = None
    for i, f in enumerate(clip):
        steady = i / 30
        wall = wall0 + steady + (step_fwd if i >= 30 else 0) + (step_back if i >= 65 else 0)
        r = pipeline.process(dataclasses.replace(f, index=i, timestamp=wall, monotonic=steady))
        board.draw(surface, r, BoardStats())
        rec = frame_record(r)  # the record keeps the wall clock, and the steady one beside it
        assert rec["timestamp"] == round(wall, 6) and rec["steady"] == round(steady, 3)
        for face in r.faces:  # held for no longer than the run has lasted
            assert 0 <= face.held_s <= steady + 1e-6
        if i == 59:
            assert r.faces and max(face.held_s for face in r.faces) > 1.0  # held across the step
            cards_after_faces = len(board.cards)
    assert cards_after_faces >= 1
    assert board.cards == {}, "a card must fade 1 s after its face left, whatever the wall clock did"


def test_a_face_is_shown_with_its_label_on_the_frame_it_is_confirmed(clips):
    """No extra wait after confirmation: the first frame a face reaches the results it
    carries a shown label, the model's own for that frame (the average has one frame)."""
    from fer_pi.app.assemble import build
    from fer_pi.app.config import Config
    from fer_pi.sources import VideoFile

    results = []
    src = VideoFile(clips["moving"])
    src.open()
    pipe = build(Config())
    try:
        run(src, pipe, sinks=[results.append], max_frames=20)
    finally:
        pipe.close()
        src.close()
    first = next(r for r in results if r.faces)
    face = first.faces[0]
    assert first.frame.index == Config().detect.confirm_frames - 1  # its third sighting
    assert face.shown == face.prediction.label and face.held_s == 0.0


@pytest.mark.parametrize("old, new", [("alpha", "smooth.tau_s"), ("hold_frames", "smooth.hold_s"),
                                      ("uncertain_below", "smooth.uncertain_lead")])
def test_the_smoothers_frame_counted_keys_are_refused_with_what_replaced_them(old, new):
    from fer_pi.app.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match=f"smooth.{old} is gone: use {new}"):
        from_dict({"smooth": {old: 0.3}})

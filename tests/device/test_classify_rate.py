"""The CPU budget (classify.max_hz, batched invokes, motion-gated scans) on the real model,
the real cascade and real video files: each face read at most at the set rate and at once
when new, the same probabilities batched as alone, scans only where the picture changed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import replay

from fer_pi.app.assemble import build
from fer_pi.app.config import ConfigError, from_dict
from fer_pi.core.records import FaceBox, Frame
from fer_pi.sources import VideoFile
from fer_pi.sources.demo import Placement, compose, write_clip
from fer_pi.vision.classify import Classifier
from fer_pi.vision.detect import HaarDetector, to_gray
from fer_pi.vision.find import scan
from fer_pi.vision.motion import MotionGate
from fer_pi.vision.schedule import ClassifySchedule
from fer_pi.vision.smooth import Smoother


def _reads(schedule: ClassifySchedule, ids, times):
    """When each face was classified, feeding the schedule frame after frame."""
    out: dict[int, list[float]] = {i: [] for i in ids}
    per_frame = []
    for t in times:
        due = schedule.due(ids, t)
        for tid, d in zip(ids, due, strict=True):
            if d:
                schedule.read(tid, t)
                out[tid].append(t)
        per_frame.append(sum(due))
    return out, per_frame


@pytest.mark.parametrize("fps,hz", [(30, 10), (60, 10), (30, 5), (15, 10), (24, 7)])
def test_a_face_is_classified_at_most_at_the_set_rate(fps, hz):
    times = [i / fps for i in range(int(4 * fps))]  # the test's own clock: 4 s of frames
    reads, per_frame = _reads(ClassifySchedule(hz), [1, 2, 3, 4], times)
    for tid, ts in reads.items():
        assert ts[0] == 0.0, "a new face is classified on its first frame"
        for start in times:  # any second, half-open, holds at most hz readings
            assert sum(start <= t < start + 1 - 1e-9 for t in ts) <= hz, (tid, start)
        # ... and the face is not starved: read about every ceil(fps / hz) frames
        assert len(ts) >= 0.9 * 4 * fps / math.ceil(fps / hz - 1e-9)
    # spread: after the first frame no frame carries all four faces
    assert per_frame[0] == 4 and max(per_frame[1:]) < 4


def test_rate_zero_reads_every_face_every_frame_and_untracked_faces_always():
    s = ClassifySchedule(0)
    assert all(all(s.due([1, 2], i / 30)) for i in range(10))
    s = ClassifySchedule(5)
    s.read(1, 0.0)
    assert s.due([None, 1], 0.01) == [True, False]


def test_a_face_that_returns_after_the_clock_went_back_is_read_at_once():
    s = ClassifySchedule(5)
    s.due([1], 10.0)
    s.read(1, 10.0)
    assert s.due([1], 3.0) == [True]  # a looped file, a clock that stepped back


@pytest.mark.parametrize("value", [-1, 0.5, 121, "fast", True])
def test_the_rate_setting_is_refused_outside_its_range(value):
    with pytest.raises(ConfigError, match="classify.max_hz"):
        from_dict({"classify": {"max_hz": value}})
    assert from_dict({"classify": {"max_hz": 0}}).classify.max_hz == 0.0
    assert from_dict({"classify": {"max_hz": 120}}).classify.max_hz == 120.0


def test_the_smoother_carries_the_label_between_readings():
    sm = Smoother(("a", "b"))
    sm.update(7, (0.9, 0.1), 0.0)
    now = sm.current(7, 0.4)
    assert now is not None and now.shown == "a" and now.held_s == pytest.approx(0.4)
    assert sm.current(8, 0.4) is None


@pytest.mark.parametrize("flip", [True, False])
def test_batched_and_single_invokes_give_the_same_probabilities(model_path, clips, flip):
    clf = Classifier(model_path, threads=2, flip_tta=flip)
    det = HaarDetector()
    src = VideoFile(clips["two"])
    src.open()
    crops = []
    try:
        while len(crops) < 8:
            frame = src.read()
            if frame is None:
                break
            gray = to_gray(frame.image)
            crops += [clf.info.face.crop(gray, b, clf.input_size) for b in det.detect(gray)]
    finally:
        src.close()
    rng = np.random.default_rng(0)
    crops += [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(3)]
    alone = np.array([clf.probabilities(c) for c in crops])
    for n in (1, 2, 4, 8, len(crops)):  # each batch size, and back to one face
        got = np.array([p.probs for k in range(0, len(crops), n)
                        for p in clf.classify(crops[k:k + n])])
        np.testing.assert_allclose(got, alone, atol=1e-6)
    assert clf.classify([]) == []


@pytest.fixture(scope="module")
def late_face_clip(tmp_path_factory, face):
    """3 s at 30 FPS: one face from the start; a second comes in at 1 s and stays."""
    def frames():
        for i in range(90):
            places = [Placement(20, 100, 260)]
            if i >= 30:
                places.append(Placement(360, 100, 260))
            yield compose(places, face=face)

    return write_clip(tmp_path_factory.mktemp("late") / "late.avi", frames())


def _replay(path, cfg):
    pipeline = build(cfg)
    return replay(path, pipeline), pipeline


def test_each_face_read_at_the_rate_and_a_new_one_on_its_first_shown_frame(late_face_clip):
    results, pipeline = _replay(late_face_clip, from_dict({"classify": {"max_hz": 5}}))
    first_seen: dict[int, int] = {}
    reads: dict[int, list[float]] = {}
    for r in results:
        for f in r.faces:
            first_seen.setdefault(f.track_id, r.frame.index)
            if f.fresh:
                reads.setdefault(f.track_id, []).append(r.frame.timestamp)
            if r.frame.index == first_seen[f.track_id]:
                assert f.fresh, "a face is classified on the first frame it is shown"
            assert f.shown is not None  # between readings the smoother's label is carried
    assert len(first_seen) == 2 and max(first_seen.values()) >= 30
    for ts in reads.values():
        gaps = np.diff(ts)
        assert gaps.min() >= 0.2 - 1e-6  # at most 5 a second
        assert gaps.max() <= 0.2 + 2 / 30  # and not starved (within two frames)
    shown = sum(len(r.faces) for r in results)
    assert pipeline.inferences == sum(len(v) for v in reads.values()) < shown / 4


def test_the_same_shown_labels_with_the_rate_off_on_a_steady_face(clips):
    """A still face's label does not depend on how often it is read."""
    every, _ = _replay(clips["two"], from_dict({"classify": {"max_hz": 0}}))
    rated, _ = _replay(clips["two"], from_dict({"classify": {"max_hz": 10}}))
    a = [sorted((f.track_id, f.shown) for f in r.faces) for r in every]
    b = [sorted((f.track_id, f.shown) for f in r.faces) for r in rated]
    assert a == b and any(a)
    assert all(f.fresh for r in every for f in r.faces)
    assert not all(f.fresh for r in rated for f in r.faces)


def _room(people: list[tuple[float, float]], face_w: float = 80) -> np.ndarray:
    """Head-and-shoulders photos (the bundled astronaut) whose faces are ``face_w`` wide,
    centred at each (x, y), on a plain wall."""
    from fer_pi.devtools.scenes import astronaut_photo, paste

    frame = np.full((480, 640, 3), 160, np.uint8)
    for cx, cy in people:
        paste(frame, astronaut_photo(), face_w, cx, cy)
    return frame


def test_the_motion_gate_skips_a_still_room_and_scans_where_a_face_came_in():
    gate = MotionGate(full_every_s=2.0, min_face=32)
    det = HaarDetector(min_size=32, detect_width=-1)
    still = _room([(150, 200)])
    known = det.detect(to_gray(still))
    assert len(known) == 1
    assert gate.plan(to_gray(still), 0.0, known) is None  # the first scan is whole
    noisy = np.clip(still + np.random.default_rng(1).normal(0, 4, still.shape), 0, 255
                    ).astype(np.uint8)
    assert gate.plan(to_gray(noisy), 0.2, known) == []  # sensor noise is not motion
    # the known person moving is their own motion: still nothing to scan
    moved = _room([(165, 205)])
    assert gate.plan(to_gray(moved), 0.4, det.detect(to_gray(moved))) == []
    # a second person comes in: only their part of the frame is scanned, and found there
    two = _room([(165, 205), (480, 200)])
    gray = to_gray(two)
    regions = gate.plan(gray, 0.6, det.detect(to_gray(moved)))
    assert regions, "the new face's region is scanned"
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions)
    assert area < 0.45 * gray.size
    found = scan(det, gray, None, regions)
    whole = [b for b in det.detect(gray) if b.x > 320]
    assert len(whole) == 1
    assert any(b.iou(whole[0]) > 0.8 for b in found), (found, whole)
    assert not any(b.x < 320 for b in found), "the known face's part was not scanned"
    # a large change soon after a whole scan waits while faces are followed, not otherwise
    crowd = to_gray(_room([(100, 150), (300, 150), (500, 150), (200, 330), (420, 330)]))
    assert gate.plan(crowd, 0.7, known) is None  # most of the frame changed: whole
    crowd2 = to_gray(_room([(130, 160), (330, 160), (530, 160), (230, 340), (450, 340)]))
    before = gate.skipped
    assert gate.plan(crowd2, 0.75, known) == [] and gate.skipped == before + 1
    assert gate.plan(crowd2, 0.8, []) is None
    # and the whole frame again once full_every_s has passed
    assert gate.plan(gray, 2.9, []) is None
    assert (gate.whole, gate.regional, gate.skipped) == (4, 1, 3)


def test_a_picture_moving_as_a_whole_backs_its_whole_scans_off_until_someone_new_comes():
    """A camera panning (every frame a large change) while a face is followed: whole scans
    0.2, 0.4, 0.8, 1.6 s apart, then every full_every_s; a newcomer found brings the
    0.2 s back; with nobody followed, every large change is scanned at once."""
    from fer_pi.vision.motion import WHOLE_GAP_S

    gate = MotionGate(full_every_s=2.0, min_face=32)
    known = [FaceBox(300, 200, 60, 60)]
    rng = np.random.default_rng(3)

    def frame() -> np.ndarray:  # a new picture each time: all of it changed
        return rng.integers(0, 255, (480, 640), np.uint8)

    def whole_times(t0: float, t1: float, faces) -> list[float]:
        out = []
        for i in range(round((t1 - t0) * 30)):
            t = t0 + i / 30
            if gate.plan(frame(), t, faces) is None:
                out.append(round(t, 2))
        return out

    times = whole_times(0.0, 9.0, known)
    gaps = np.diff(times)
    assert times[0] == 0.0
    assert list(np.round(gaps[:4], 1)) == [0.2, 0.4, 0.8, 1.6]
    assert all(1.97 <= g <= 2.04 for g in gaps[4:]) and len(gaps) == 6  # ... 3.0, 5.0, 7.0
    gate.newcomer()
    again = whole_times(9.0, 9.5, known)
    assert again and again[0] < 9.0 + WHOLE_GAP_S + 0.04  # soon again after a newcomer
    assert len(whole_times(9.5, 9.7, [])) == 6  # nobody followed: every one at once


def test_a_regional_scan_on_a_cameras_small_copy_gives_frame_boxes():
    import cv2

    det = HaarDetector(min_size=32, detect_width=-1)
    gray = to_gray(_room([(480, 200)]))
    scale = det.scale_for(gray.shape[1])
    small = cv2.resize(gray, (round(640 * scale), round(480 * scale)),
                       interpolation=cv2.INTER_AREA)
    (whole,) = scan(det, gray, small)
    (part,) = scan(det, gray, small, [(300, 50, 640, 420)])
    assert part.iou(whole) > 0.8


def test_a_file_with_motion_gated_scans_finds_the_late_face_as_soon_as_whole_scans(
        late_face_clip):
    gated, pipe = _replay(late_face_clip, from_dict({}))
    assert pipe.finder.gate is not None and pipe.finder.gate.skipped > 0
    whole, _ = _replay(late_face_clip, from_dict({"detect": {"full_scan_s": 0}}))

    def first_two(results):
        return next(r.frame.index for r in results if len(r.faces) == 2)

    assert first_two(gated) == first_two(whole) < 40
    assert [len(r.faces) for r in gated] == [len(r.faces) for r in whole]


def test_a_face_box_moved_by_a_region_offset_keeps_its_landmarks_with_it():
    b = FaceBox(10, 20, 40, 40, (20.0, 30.0, 40.0, 30.0))
    m = b.moved_to(110, 220, 40, 40)
    assert m.landmarks == (120.0, 230.0, 140.0, 230.0)


def test_frames_of_a_looped_clip_keep_their_rate(late_face_clip):
    """A clip that loops keeps its times rising, so a face is not read twice at the seam."""
    pipeline = build(from_dict({"classify": {"max_hz": 5}}))
    try:
        src = VideoFile(late_face_clip, loop=True)
        src.open()
        frames = [src.read() for _ in range(200)]
        src.close()
        assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:], strict=False))
        reads = [pipeline.process(Frame(f.index, f.timestamp, f.image, "x")) for f in frames]
    finally:
        pipeline.close()
    per_face: dict[int, list[float]] = {}
    for r in reads:
        for f in r.faces:
            if f.fresh:
                per_face.setdefault(f.track_id, []).append(r.frame.timestamp)
    assert all(np.diff(ts).min() >= 0.2 - 1e-6 for ts in per_face.values() if len(ts) > 1)

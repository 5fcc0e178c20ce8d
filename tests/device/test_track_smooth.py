"""Tracking and smoothing as pure modules: no camera, no display, no model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_pi.core.labels import LABELS
from fer_pi.core.records import FaceBox
from fer_pi.vision.smooth import UNCERTAIN, Smoother, SmoothSettings
from fer_pi.vision.track import Tracker, TrackerSettings


def test_crossing_faces_keep_their_ids():
    tr = Tracker()
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for f in range(60):
        a = FaceBox(20 + 9 * f, 60, 70, 70)  # left → right, upper row
        b = FaceBox(560 - 9 * f, 170, 70, 70)  # right → left, lower row
        for track, box in tr.update([b, a] if f % 2 else [a, b], f):
            seen[0 if box.y == 60 else 1].add(track.id)
    assert seen == {0: {1}, 1: {2}}


def test_missed_detections_keep_the_id_then_expire_without_reuse():
    tr = Tracker(TrackerSettings(max_missed=5))
    box = FaceBox(100, 100, 80, 80)
    assert [t.id for t, _ in tr.update([box], 0)] == [1]
    for f in range(1, 5):  # four frames without a detection
        assert tr.update([], f) == []
    assert [t.id for t, _ in tr.update([box], 5)] == [1]
    for f in range(6, 13):  # now gone for longer than max_missed
        tr.update([], f)
    assert tr.tracks == []
    assert [t.id for t, _ in tr.update([box], 13)] == [2]  # a new face, a new ID


def test_detection_cadence_predicts_motion():
    tr = Tracker()
    for f in range(0, 10, 2):
        tr.update([FaceBox(100 + 10 * f, 50, 60, 60)], f)
    (track, box), = tr.predict(9)
    assert track.id == 1
    assert abs(box.center[0] - (130 + 10 * 9)) < 6  # it kept moving 10 px per frame


def test_a_far_jump_is_a_new_face():
    tr = Tracker()
    tr.update([FaceBox(0, 0, 50, 50)], 0)
    ((t, _),) = tr.update([FaceBox(400, 300, 50, 50)], 1)
    assert t.id == 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(-50, 700), st.integers(-50, 500),
                                   st.integers(1, 300)), max_size=6), max_size=30))
def test_tracker_never_duplicates_ids_in_a_frame(frames):
    tr = Tracker()
    seen_max = 0
    for i, boxes in enumerate(frames):
        out = tr.update([FaceBox(x, y, s, s) for x, y, s in boxes], i)
        ids = [t.id for t, _ in out]
        assert len(ids) == len(set(ids)) == len(boxes)
        new = [x for x in ids if x > seen_max]
        assert new == sorted(new)
        seen_max = max([seen_max, *ids])


def _probs(lead: int, p: float) -> np.ndarray:
    v = np.full(7, (1 - p) / 6)
    v[lead] = p
    return v


def test_smoothing_cuts_flicker_and_keeps_the_true_label():
    rng = np.random.default_rng(3)
    # happy most frames, an occasional frame of sad or surprise: the raw argmax flickers
    stream = [_probs(3, 0.6) if rng.random() > 0.3 else _probs(int(rng.choice([4, 5])), 0.6)
              for _ in range(300)]
    raw = Smoother(LABELS, SmoothSettings.off())
    smooth = Smoother(LABELS)
    raw_labels = [raw.update(1, p, i / 30).shown for i, p in enumerate(stream)]
    smooth_labels = [smooth.update(1, p, i / 30).shown for i, p in enumerate(stream)]

    def changes(xs):
        return sum(a != b for a, b in zip(xs, xs[1:], strict=False))

    assert changes(raw_labels) > 50
    assert changes(smooth_labels) <= changes(raw_labels) / 5
    assert smooth_labels.count("happy") > 0.9 * len(stream)


def test_a_real_change_is_shown_after_hold_frames():
    # frames a second apart: half of each new frame (tau = 1/ln 2 s), shown after 2 s of lead
    sm = Smoother(LABELS, SmoothSettings(tau_s=1 / np.log(2), margin=0.1, hold_s=2.0))
    for i in range(10):
        out = sm.update(7, _probs(3, 0.9), i)
    assert out.shown == "happy" and out.held_s == 9
    shown = [sm.update(7, _probs(0, 0.9), 10 + i).shown for i in range(8)]
    first = shown.index("angry")
    assert 2 <= first <= 5 and all(s == "angry" for s in shown[first:])


def test_low_confidence_is_uncertain():
    sm = Smoother(LABELS, SmoothSettings(uncertain_lead=0.1, hold_s=1.0))
    out = [sm.update(1, np.full(7, 1 / 7), i).shown for i in range(5)]
    assert out[-1] == UNCERTAIN


def test_a_leader_wandering_about_the_threshold_does_not_flicker_uncertain():
    """Happy's average drifting 0.33 - 0.38 - 0.33 - ... (a lead over the next label of 0.22
    and 0.27): without a band the label goes in and out of 'uncertain' with each drift;
    with the band it stays uncertain until happy clearly leads, and then shows happy."""
    wander = [0.33] * 8 + [0.38] * 8
    stream = wander * 4 + [0.5] * 10

    def shown(band: float) -> list[str]:
        sm = Smoother(LABELS, SmoothSettings(tau_s=0.0, margin=0.1, hold_s=1.0,
                                             uncertain_lead=0.245, uncertain_band=band))
        return [sm.update(1, _probs(3, v), i).shown for i, v in enumerate(stream)]

    def changes(seq: list[str]) -> int:
        return sum(a != b for a, b in zip(seq, seq[1:], strict=False))

    assert changes(shown(0.0)) >= 7  # in and out with every drift
    banded = shown(0.05)
    assert banded[:-10] == [UNCERTAIN] * (len(stream) - 10)
    assert banded[-1] == "happy" and changes(banded) == 1


def test_forget_drops_ended_tracks():
    sm = Smoother(LABELS)
    for tid in range(5):
        sm.update(tid, _probs(3, 0.9), 0)
    sm.forget({3})
    assert list(sm._states) == [3]


def _stream(t: float) -> np.ndarray:
    """A face's probabilities as a function of time: happy for 2 s, then surprise, with a
    wrong label now and then (100 ms in each 0.35 s: at least a frame at 10 FPS), the same
    at any frame rate."""
    lead_label = 3 if t < 2.0 else 5
    if 0.2 <= (t % 0.35) < 0.3 and not 1.6 <= t < 2.8:  # none about the change itself
        lead_label = 4
    return _probs(lead_label, 0.7)


@pytest.mark.parametrize("smooth", [SmoothSettings(),
                                    SmoothSettings(tau_s=0.3, margin=0.1, hold_s=0.2)])
def test_the_same_sequence_at_10_30_and_60_fps_shows_the_same_labels(smooth):
    """The smoother counts seconds: at 10, 30 and 60 FPS the shown label switches at the same
    moment, within the slowest rate's frames (the average's crossing is seen at a frame, the
    hold ends at a frame: two frames, 0.2 s at 10 FPS), and agrees everywhere else. With
    hold and averaging counted in frames, 60 FPS would switch six times sooner than 10."""
    def shown_at(fps: float) -> list[tuple[float, str]]:
        sm = Smoother(LABELS, smooth)
        return [(i / fps, sm.update(1, _stream(i / fps), i / fps).shown)
                for i in range(int(4 * fps))]

    runs = {fps: shown_at(fps) for fps in (10, 30, 60)}

    def switch(run):
        return next(t for t, s in run if s == "surprise")

    switches = [switch(r) for r in runs.values()]
    assert max(switches) - min(switches) <= 0.2 + 1e-9, switches
    slow = dict(runs[10])
    for fps in (30, 60):
        for t, s in runs[fps]:
            near = min(slow, key=lambda u: abs(u - t))
            if abs(t - 2.0) > 0.6 and abs(near - t) < 1e-9:
                assert slow[near] == s, (fps, t, s, slow[near])


def test_a_face_shows_its_first_label_on_its_first_frame():
    sm = Smoother(LABELS)
    assert sm.update(9, _probs(5, 0.8), 12.0).shown == "surprise"


@given(st.lists(st.tuples(st.integers(0, 6), st.floats(0.15, 0.95)), min_size=1, max_size=60),
       st.floats(0.0, 0.5), st.floats(0.02, 0.3), st.floats(0.0, 0.1))
@settings(max_examples=200, deadline=None)
def test_uncertain_is_never_shown_on_a_face_the_model_reads_clearly(stream, tau, lead_th, band):
    """Whenever the board says 'uncertain', the face's average leads the next label by less
    than the threshold (and its band): never as the label of a face read steadily."""
    from fer_pi.vision.smooth import lead

    s = SmoothSettings(tau_s=tau, uncertain_lead=lead_th, uncertain_band=band)
    sm = Smoother(LABELS, s)
    for i, (label, p) in enumerate(stream):
        out = sm.update(1, _probs(label, p), i / 15)
        if out.shown == UNCERTAIN:
            assert lead(np.asarray(out.probs)) < lead_th + band + 1e-9

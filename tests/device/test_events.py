"""Events and the room summary, from hand-made frame results (pure logic, no network)."""

from __future__ import annotations

import re

import numpy as np

from fer_pi.app.config import MqttConfig
from fer_pi.core.labels import LABELS
from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction, room_summary
from fer_pi.outputs.events import EventStream
from fer_pi.outputs.health import HealthState
from fer_pi.outputs.mqtt import discovery_messages, topics


def _face(tid: int | None, shown: str | None, top: int = 3) -> Face:
    probs = tuple(0.7 if i == top else 0.05 for i in range(7))
    return Face(FaceBox(10, 10, 50, 50), Prediction(probs, LABELS), tid, probs, shown, 0.0)


def _result(i: int, *faces: Face) -> FrameResult:
    return FrameResult(Frame(i, i / 30, np.zeros((4, 4, 3), np.uint8)), tuple(faces))


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_new_change_gone_and_nothing_in_between():
    stream = EventStream(LABELS, interval_s=0, clock=Clock())
    seq = [
        _result(0, _face(1, "happy")),
        _result(1, _face(1, "happy")),
        _result(2, _face(1, "sad", 4), _face(2, "neutral", 6)),
        _result(3, _face(2, "neutral", 6)),
        _result(4, _face(2, "neutral", 6)),
    ]
    got = [[(e.kind, e.track_id, e.label, e.previous) for e in stream.update(r)] for r in seq]
    assert got == [
        [("new", 1, "happy", None)],
        [],
        [("change", 1, "sad", "happy"), ("new", 2, "neutral", None)],
        [("gone", 1, "sad", None)],
        [],
    ]


def test_clear_sends_every_tracked_face_away_once():
    clock = Clock()
    stream = EventStream(LABELS, clock=clock)
    stream.update(_result(0, _face(2, "happy"), _face(1, "sad", 4)))
    stream.update(_result(1, _face(2, "neutral", 6), _face(1, "sad", 4)))
    clock.t += 3
    gone = stream.clear()
    assert [(e.kind, e.track_id, e.label, e.frame, e.previous, e.time) for e in gone] == [
        ("gone", 1, "sad", 1, None, 1003.0), ("gone", 2, "neutral", 1, None, 1003.0)]
    assert stream.clear() == []
    # a face seen again afterwards is new again
    assert [e.kind for e in stream.update(_result(9, _face(2, "neutral", 6)))] == ["new"]


def test_event_carries_the_smoothed_probabilities_by_label():
    ev = EventStream(LABELS, clock=Clock()).update(_result(7, _face(3, "happy")))[0]
    d = ev.to_dict()
    assert d["probs"] == {k: (0.7 if k == "happy" else 0.05) for k in LABELS}
    assert d["confidence"] == 0.7 and d["frame"] == 7 and d["t"] == round(7 / 30, 3)
    assert d["time"] == 1000.0


def test_untracked_faces_make_no_events():
    assert EventStream(LABELS, clock=Clock()).update(_result(0, _face(None, None))) == []


def test_interval_repeats_every_face_once_per_interval():
    clock = Clock()
    stream = EventStream(LABELS, interval_s=5, clock=clock)
    assert [e.kind for e in stream.update(_result(0, _face(1, "happy"), _face(2, "sad", 4)))] \
        == ["new", "new"]  # the first interval is due at once, but a face is reported once
    clock.t += 1
    assert stream.update(_result(1, _face(1, "happy"), _face(2, "sad", 4))) == []
    clock.t += 5
    assert [(e.kind, e.track_id) for e in stream.update(
        _result(2, _face(1, "happy"), _face(2, "sad", 4)))] == [("update", 1), ("update", 2)]


def test_room_summary_counts_every_label():
    r = _result(0, _face(1, "happy"), _face(2, "happy"), _face(3, "sad", 4),
                _face(4, "uncertain"))
    room = room_summary(r.faces, LABELS)
    assert room["faces"] == 4 and room["dominant"] == "happy"
    assert room["counts"] == {**dict.fromkeys(LABELS, 0), "happy": 2, "sad": 1, "uncertain": 1}
    assert room_summary((), LABELS)["dominant"] == "none"
    # a tie goes to the label earlier in the model's order, so the sensor does not flap
    tie = room_summary(_result(0, _face(1, "sad", 4), _face(2, "happy")).faces, LABELS)
    assert tie["dominant"] == "happy"


def _render(template: str, value_json: dict):
    """The part of Home Assistant's Jinja that the discovery templates use: a dotted path."""
    m = re.fullmatch(r"\{\{ value_json((?:\.\w+)+) \}\}", template)
    assert m, template
    v = value_json
    for part in m.group(1).strip(".").split("."):
        v = v[part]
    return v


def test_discovery_templates_read_the_state_payload():
    cfg = MqttConfig(enabled=True, device_id="hall", topic_prefix="home/fer")
    state = HealthState(model="seed", camera_state="running")
    r = _result(0, _face(1, "happy"), _face(2, "surprise", 5))
    state.update(12.5, 2, 40, {"detect": 5.0}, room_summary(r.faces, LABELS))
    snap = state.snapshot()
    msgs = discovery_messages(cfg, LABELS)
    assert len(msgs) == 2 + 7 + 2
    ids = [p["unique_id"] for _, p in msgs]
    assert len(set(ids)) == len(ids)
    got = {t.split("/")[-2]: _render(p["value_template"], snap) for t, p in msgs}
    assert got["faces"] == 2 and got["fps"] == 12.5 and got["camera"] == "running"
    assert got["dominant_emotion"] == "happy"
    assert got["happy_faces"] == 1 and got["surprise_faces"] == 1 and got["sad_faces"] == 0
    for topic, p in msgs:
        assert topic.startswith("homeassistant/sensor/hall/") and topic.endswith("/config")
        assert p["state_topic"] == topics(cfg)["state"] == "home/fer/hall/state"
        assert p["availability_topic"] == "home/fer/hall/availability"
        assert p["device"]["identifiers"] == ["fer-pi-hall"]


def test_an_event_carries_the_shown_label_s_own_probability():
    """The smoother holds "sad" (hysteresis) while "happy" leads by a little: the event says
    sad at sad's probability, as the board does, not at the leader's."""
    probs = (0.02, 0.02, 0.02, 0.40, 0.36, 0.1, 0.08)  # happy leads, sad is held
    face = Face(FaceBox(10, 10, 50, 50), Prediction(probs, LABELS), 1, probs, "sad", 2.0)
    (ev,) = EventStream(LABELS, clock=Clock()).update(_result(0, face))
    assert ev.label == "sad" and ev.confidence == 0.36
    uncertain = Face(FaceBox(10, 10, 50, 50), Prediction(probs, LABELS), 2, probs, "uncertain")
    (ev,) = EventStream(LABELS, clock=Clock()).update(_result(0, uncertain))
    assert ev.label == "uncertain" and ev.confidence == 0.40  # the leader that fell short

"""The room's page, its data and its sign-in: the faces now, the labels' history by minute
and hour, fer-pi's runs across restarts, and the page's promises (no picture, no outside
address, its own script only)."""

from __future__ import annotations

import json
import re

from fer_pi.core.labels import LABELS
from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction
from fer_pi.outputs import page
from fer_pi.outputs.roomlog import FORGET_AFTER_S, RoomLog, RunLog


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def face(tid: int | None, shown: str, held_s: float = 0.0) -> Face:
    probs = tuple(0.9 if k == shown else 0.1 / 6 for k in LABELS)
    return Face(FaceBox(10, 10, 50, 50), Prediction(probs, LABELS), track_id=tid,
                smoothed=probs, shown=shown, held_s=held_s)


def frame(i: int, t: float, *faces: Face) -> FrameResult:
    return FrameResult(Frame(i, t, None), tuple(faces))


def test_faces_now_carry_the_shown_label_its_hold_and_time_in_view():
    room = RoomLog(LABELS, clock=Clock())
    room.on_frame(frame(0, 10.0, face(1, "happy", 0.0)))
    room.on_frame(frame(1, 12.5, face(1, "sad", 0.4), face(2, "neutral")))
    now = room.now()["faces_now"]
    assert [(f["track_id"], f["label"], f["held_s"], f["seen_s"]) for f in now] == [
        (1, "sad", 0.4, 2.5), (2, "neutral", 0.0, 0.0)]
    assert now[0]["confidence"] == 0.9
    # a face away longer than FORGET_AFTER_S comes back as new: its time in view restarts
    room.on_frame(frame(2, 12.5 + FORGET_AFTER_S + 1, face(2, "neutral")))
    room.on_frame(frame(3, 12.5 + FORGET_AFTER_S + 2, face(1, "sad")))
    assert room.now()["faces_now"][0]["seen_s"] == 0.0
    room.clear()
    assert room.now()["faces_now"] == []


def test_history_counts_face_frames_per_minute_for_an_hour_and_per_hour_for_a_day():
    clock = Clock(1_800_000_000.0 - 1_800_000_000.0 % 3600)  # on the hour
    room = RoomLog(LABELS, clock=clock)
    t0 = clock.t
    for minute in range(0, 26 * 60, 30):  # a frame every 30 min of wall clock, for 26 h
        clock.t = t0 + minute * 60
        room.on_frame(frame(minute, minute * 60.0, face(1, "happy"), face(2, "sad")))
        room.on_frame(frame(minute + 1, minute * 60.0 + 1, face(1, "happy")))
    h = room.history()
    assert h["labels"][-1] == "uncertain" and set(LABELS) <= set(h["labels"])
    # the last hour: the two minutes with frames in it, oldest first
    assert [m["start"] for m in h["minutes"]] == [clock.t - 1800, clock.t]
    assert h["minutes"][-1] == {"start": clock.t, "frames": 2, "counts": {"happy": 2, "sad": 1}}
    # the last day: 24 hours kept (25 h 30 min ago is gone), each with two half-hours
    assert len(h["hours"]) == 24 and all(p["frames"] == 4 for p in h["hours"][:-1])
    assert h["hours"][-1]["start"] == clock.t - clock.t % 3600
    assert h["hours"][0]["counts"] == {"happy": 4, "sad": 2}


def test_runs_are_kept_across_restarts_and_say_how_each_ended(tmp_path):
    path = tmp_path / "runs.json"
    clock = Clock(1000.0)
    first = RunLog(path, clock=clock)
    first.start()
    clock.t = 1100.0  # this run never stops: killed, or the power cut
    clock.t = 1200.0
    room = RoomLog(LABELS)
    second = RunLog(path, room, clock=clock)
    second.start()
    clock.t = 1300.0
    assert second.exit(RuntimeError, RuntimeError("camera on fire"), None) is False
    runs = json.loads(path.read_text())
    assert runs == [{"started": 1000.0, "stopped": None, "error": None},
                    {"started": 1200.0, "stopped": 1300.0,
                     "error": "RuntimeError: camera on fire"}]
    assert room.now()["runs"] == runs  # what the page shows
    third = RunLog(path, clock=clock)
    third.start()
    third.stop()
    assert json.loads(path.read_text())[-1] == {"started": 1300.0, "stopped": 1300.0,
                                                "error": None}


def test_an_unreadable_runs_file_starts_a_new_list(tmp_path, caplog):
    path = tmp_path / "runs.json"
    for text in ("{not json", '{"a": 1}', '[{"started": "yesterday"}, 7]'):
        path.write_text(text)
        log = RunLog(path, clock=Clock(5.0))
        log.start()
        assert log.runs == [{"started": 5.0, "stopped": None, "error": None}], text
    assert str(path) in caplog.text


def test_runs_without_a_folder_are_this_run_only_and_an_unwritable_one_is_logged(tmp_path,
                                                                                caplog):
    room = RoomLog(LABELS)
    RunLog(None, room, clock=Clock(7.0)).start()
    assert room.now()["runs"] == [{"started": 7.0, "stopped": None, "error": None}]
    bad = tmp_path / "no such folder" / "runs.json"
    RunLog(bad, room).start()  # logged; the board goes on
    assert str(bad) in caplog.text and len(room.now()["runs"]) == 1


def test_the_page_is_self_contained_and_can_show_no_picture():
    text, headers = page.room_page()
    csp = headers["Content-Security-Policy"]
    assert "img-src 'none'" in csp and "default-src 'none'" in csp
    assert "connect-src 'self'" in csp and "'unsafe-inline'" not in (
        csp.split("script-src")[1].split(";")[0])
    # its one script runs by its hash; no outside address, no picture, no font fetched
    scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
    assert len(scripts) == 1 and page._hash(scripts[0]) in csp
    assert not re.search(r"https?://|<img|<picture|<video|<canvas|data:image|url\(|@import",
                         text, re.I)
    colours = json.loads(re.search(r'id="colours">(.*?)</script>', text, re.S)[1])
    assert set(LABELS) <= set(colours)
    login, lheaders = page.login_page("<b>no</b>")
    assert "&lt;b&gt;no&lt;/b&gt;" in login and 'method="post"' in login
    assert lheaders["Content-Security-Policy"].count("sha256-") == 0  # no script at all


def test_the_session_cookie_is_not_the_token_and_follows_it():
    a, b = page.session_value(b"secret-a"), page.session_value(b"secret-b")
    assert a != b and "secret" not in a and len(a) == 64
    cookie = page.session_cookie(b"secret-a")
    assert cookie.startswith(f"{page.COOKIE}={a};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert page.cookie_value(f"other=1; {page.COOKIE}={a}; x=y") == a
    assert page.cookie_value("other=1") == ""

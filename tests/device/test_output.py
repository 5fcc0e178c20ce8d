"""Results files for long runs: one record per interval, a file per day, appending
across restarts, and a torn last line repaired before anything is appended."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest
from conftest import FakeClock, run_cli

from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction
from fer_pi.outputs.results import OutputError, ResultWriter

LABELS = ("a", "b")


def result(i: int, fps: float = 30.0) -> FrameResult:
    face = Face(FaceBox(1, 2, 3, 4), Prediction((0.25, 0.75), LABELS), track_id=1)
    return FrameResult(Frame(i, 1.7e9 + i / fps, np.zeros((4, 4, 3), np.uint8),
                             monotonic=i / fps), (face,))


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_interval_keeps_one_record_per_interval(tmp_path):
    w = ResultWriter(tmp_path / "r.jsonl", LABELS, interval_s=0.5)
    for i in range(90):  # 3 s at 30 FPS
        w.write(result(i))
    w.close()
    frames = [r["frame"] for r in lines(tmp_path / "r.jsonl")]
    assert frames == [0, 15, 30, 45, 60, 75]


def test_a_strftime_path_starts_a_new_file_when_its_name_changes(tmp_path):
    clock = FakeClock(time.mktime((2026, 11, 26, 23, 59, 58, 0, 0, -1)))
    w = ResultWriter(tmp_path / "day-%Y-%m-%d.jsonl", LABELS, clock=clock)
    for i in range(4):
        w.write(result(i))
    clock.t += 5  # past midnight
    for i in range(4, 7):
        w.write(result(i))
    w.close()
    first, second = tmp_path / "day-2026-11-26.jsonl", tmp_path / "day-2026-11-27.jsonl"
    assert [r["frame"] for r in lines(first)] == [0, 1, 2, 3]
    assert [r["frame"] for r in lines(second)] == [4, 5, 6]
    assert w.files == 2 and w.errors == 0


def test_a_restart_appends_after_cutting_a_torn_line(tmp_path, caplog):
    path = tmp_path / "r-%Y.jsonl"  # a rolling path appends without being told
    w = ResultWriter(path, LABELS)
    for i in range(2):
        w.write(result(i))
    w.close()
    name = w.path
    with open(name, "ab") as fh:  # the power went while a line was being written
        fh.write(b'{"frame":2,"timestamp":1.7')
    with caplog.at_level(logging.WARNING):
        w = ResultWriter(path, LABELS)
        w.write(result(3))
        w.close()
    assert [r["frame"] for r in lines(name)] == [0, 1, 3]
    assert "torn last line" in caplog.text


def test_csv_append_writes_one_header_and_refuses_other_columns(tmp_path):
    path = tmp_path / "r.csv"
    for run in range(2):
        w = ResultWriter(path, LABELS, append=True)
        w.write(result(run))
        w.close()
    rows = path.read_text().splitlines()
    assert rows[0].startswith("frame,timestamp") and len(rows) == 3
    assert sum(r.startswith("frame,") for r in rows) == 1
    with pytest.raises(OutputError, match=str(path)):
        ResultWriter(path, ("x", "y", "z"), append=True)


def test_without_append_a_fixed_path_is_replaced(tmp_path):
    path = tmp_path / "r.jsonl"
    for run in range(2):
        w = ResultWriter(path, LABELS)
        w.write(result(run))
        w.close()
    assert [r["frame"] for r in lines(path)] == [1]


def test_a_file_that_cannot_be_opened_mid_run_is_retried(tmp_path):
    clock = FakeClock(1_000_000.0)
    w = ResultWriter(tmp_path / "%S" / "r.jsonl", LABELS, clock=clock)
    w.write(result(0))
    blocked = time.strftime("%S", time.localtime(clock.t + 2))
    (tmp_path / blocked).write_text("a file where the folder should be")
    clock.t += 2
    w.write(result(1))  # cannot open: not written, counted
    w.write(result(2))  # within the second: not retried, not written
    clock.t += 2
    w.write(result(3))
    w.close()
    assert w.errors == 2
    assert [r["frame"] for r in lines(w.path)] == [3]


def test_cli_daily_file_at_an_interval(clips, tmp_path):
    out = tmp_path / "results-%Y%m%d.jsonl"
    names = {time.strftime("results-%Y%m%d.jsonl")}
    proc = run_cli("--video", str(clips["moving"]), "--headless", "--output", str(out),
                   "--output-interval", "0.5")
    names.add(time.strftime("results-%Y%m%d.jsonl"))  # a run across midnight makes two
    assert proc.returncode == 0, proc.stderr
    written = sorted(tmp_path.glob("results-*.jsonl"))
    assert written and {p.name for p in written} <= names
    ts = [r["timestamp"] for p in written for r in lines(p)]
    assert len(ts) == 4 and all(b - a >= 0.5 - 1e-6 for a, b in zip(ts, ts[1:], strict=False))


def test_health_says_whether_the_record_is_kept(tmp_path):
    from fer_pi.outputs.health import HealthState, prometheus

    clock = FakeClock(1_000_000.0)
    w = ResultWriter(tmp_path / "%S" / "r.jsonl", LABELS, clock=clock)
    state = HealthState()
    assert "output" not in prometheus(state.snapshot())  # no results file: no series
    state.output = w.status
    w.write(result(0))
    (tmp_path / time.strftime("%S", time.localtime(clock.t + 2))).write_text("in the way")
    clock.t += 2
    w.write(result(1))
    snap = state.snapshot()
    assert snap["output"] == {"path": str(w.path), "records": 1, "not_written": 1}
    text = prometheus(snap)
    assert "fer_pi_output_records_total 1\n" in text
    assert "fer_pi_output_not_written_total 1\n" in text
    w.close()


def test_keep_deletes_the_oldest_files_of_the_pattern_only(tmp_path, caplog):
    pattern = tmp_path / "r-%Y%m%d-%H%M%S.jsonl"
    clock = FakeClock(time.mktime((2026, 11, 26, 12, 0, 0, 0, 0, -1)))
    (tmp_path / "r-notes.jsonl").write_text("a file of the user's, not a day's\n")
    with caplog.at_level(logging.INFO):
        w = ResultWriter(pattern, LABELS, clock=clock, keep=3)
        for i in range(6):  # six files, two seconds apart
            w.write(result(i))
            clock.t += 2
        w.close()
    kept = sorted(p.name for p in tmp_path.glob("r-2026*.jsonl"))
    assert len(kept) == 3 and w.deleted == 3
    assert [r["frame"] for r in lines(tmp_path / kept[-1])] == [5]
    assert (tmp_path / "r-notes.jsonl").exists()
    assert "deleted old results" in caplog.text
    # a restart prunes too, and keeps the file it appends to
    w = ResultWriter(pattern, LABELS, clock=clock, keep=1)
    w.write(result(6))
    w.close()
    assert [p.name for p in tmp_path.glob("r-2026*.jsonl")] == [w.path.name]


def test_keep_removes_a_day_folder_once_empty(tmp_path):
    clock = FakeClock(1_000_000.0)
    w = ResultWriter(tmp_path / "%H%M%S" / "r.jsonl", LABELS, clock=clock, keep=2)
    for i in range(4):
        w.write(result(i))
        clock.t += 2
    w.close()
    assert len(list(tmp_path.iterdir())) == 2


def test_keep_without_strftime_fields_is_refused(tmp_path):
    with pytest.raises(OutputError, match="strftime"):
        ResultWriter(tmp_path / "r.jsonl", LABELS, keep=2)
    proc = run_cli("--demo", "--headless", "--output", str(tmp_path / "r.jsonl"),
                   "--output-keep", "2")
    assert proc.returncode == 2 and "output.keep" in proc.stderr

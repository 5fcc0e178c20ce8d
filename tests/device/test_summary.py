"""fer-summary on results that fer-pi itself wrote from real clips (real cascade, real model)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import pytest
from conftest import run_cli

from fer_pi.outputs.summary import FaceRow, FrameRow, main, read_frames, summarize


def summary_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_pi.outputs.summary", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def results(clips, tmp_path_factory):
    """fer-pi on the two-faces clip, writing .jsonl and .csv."""
    d = tmp_path_factory.mktemp("results")
    out = {}
    for kind in ("jsonl", "csv"):
        path = d / f"two.{kind}"
        r = run_cli("--video", str(clips["two"]), "--headless", "--output", str(path))
        assert r.returncode == 0, r.stderr
        out[kind] = path
    return out


def test_jsonl_and_csv_of_one_run_summarize_alike(results):
    s_json = summarize(*read_frames(results["jsonl"]))
    s_csv = summarize(*read_frames(results["csv"]))
    assert s_json == s_csv
    lines = [json.loads(x) for x in results["jsonl"].read_text().splitlines()]
    assert s_json["frames"] == len(lines) and s_json["skipped_lines"] == 0
    ids = {f["track_id"] for x in lines for f in x["faces"]}
    assert s_json["faces_tracked"] == len(ids) >= 2
    # every face-frame of the file is in exactly one track
    assert sum(t["frames"] for t in s_json["tracks"]) == sum(len(x["faces"]) for x in lines)
    for t in s_json["tracks"]:
        assert t["first_t"] <= t["last_t"] and t["seconds"] == pytest.approx(
            t["last_t"] - t["first_t"], abs=1e-3)
        assert sum(t["shares"].values()) == pytest.approx(1, abs=1e-3)
        assert t["most_shown"] == max(t["shares"], key=t["shares"].get)


def test_a_file_cut_short_is_read_to_its_last_whole_line(results, tmp_path):
    for kind, path in results.items():
        text = path.read_text()
        cut = tmp_path / f"cut.{kind}"
        cut.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
        frames, skipped = read_frames(cut)
        whole, _ = read_frames(path)
        assert skipped == 1, kind
        if kind == "jsonl":  # a line is a frame
            assert frames == whole[:-1]
        else:  # a row is a face: the last frame keeps the faces before the cut one
            assert frames[:-1] == whole[:-1]
            assert frames[-1].faces == whole[-1].faces[:-1]


def test_min_frames_leaves_out_brief_tracks_and_counts_them():
    def face(track, shown):
        return FaceRow(track, shown, 0.5)

    frames = [FrameRow(0, 0.0, (face(1, "happy"), face(None, "neutral"))),
              FrameRow(1, 0.1, (face(1, "happy"), face(2, "angry"))),
              FrameRow(2, 0.2, (face(1, "sad"),)),
              FrameRow(3, 0.3, ()),
              FrameRow(4, 0.4, (face(1, "uncertain"),))]
    full = summarize(frames)
    assert [t["track_id"] for t in full["tracks"]] == [1, 2]
    s = summarize(frames, min_frames=2)
    assert [t["track_id"] for t in s["tracks"]] == [1] and s["short_tracks_left_out"] == 1
    one = s["tracks"][0]
    assert (one["frames"], one["seconds"], one["most_shown"]) == (4, 0.4, "happy")
    assert one["shares"] == {"happy": 0.5, "sad": 0.25, "uncertain": 0.25}
    # the room keeps the untracked face and loses the left-out track's frame
    assert s["room"]["face_frames"] == 5 and "angry" not in s["room"]["shares"]
    assert s["untracked_face_frames"] == 1 and s["frames_with_faces"] == 4


def test_cli_prints_a_table_json_and_writes_a_csv(results, tmp_path):
    r = summary_cli(str(results["jsonl"]))
    assert r.returncode == 0, r.stderr
    s = summarize(*read_frames(results["jsonl"]))
    assert f"{s['faces_tracked']} tracked face(s)" in r.stdout
    assert r.stdout.count("\n") >= 2 + s["faces_tracked"]
    r = summary_cli(str(results["csv"]), "--json", "--csv", str(tmp_path / "faces.csv"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == s
    rows = list(csv.DictReader((tmp_path / "faces.csv").open()))
    assert [int(x["track_id"]) for x in rows] == [t["track_id"] for t in s["tracks"]]
    assert all(float(x[f"share_{t['most_shown']}"]) > 0 for x, t in zip(rows, s["tracks"], strict=True))


@pytest.mark.parametrize("name, content, needle", [
    ("absent.jsonl", None, "cannot read results"),
    ("notes.txt", "hello\n", "must end in .jsonl or .csv"),
    ("other.jsonl", '{"a": 1}\n{"b": 2}\n', "not a fer-pi results file"),
    ("other.csv", "a,b\n1,2\n", "not a fer-pi results file"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main([str(path)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and str(path) in err


def test_unwritable_csv_is_exit_5(results, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir" / "faces.csv"
    assert main([str(results["jsonl"]), "--csv", str(target)]) == 5
    assert str(target) in capsys.readouterr().err


def test_a_file_appended_across_restarts_keeps_each_runs_faces_apart(clips, results, tmp_path):
    """Each fer-pi run numbers its faces from 1: two runs appended to one file are two sets
    of visitors, not one set seen for twice as long."""
    one = summarize(*read_frames(results["jsonl"]))
    path = tmp_path / "r-%Y.jsonl"  # a strftime path appends across restarts
    for _ in range(2):
        r = run_cli("--video", str(clips["two"]), "--headless", "--output", str(path))
        assert r.returncode == 0, r.stderr
    (written,) = tmp_path.glob("r-*.jsonl")
    s = summarize(*read_frames(written))
    assert s["runs"] == 2 and s["frames"] == 2 * one["frames"]
    assert s["faces_tracked"] == 2 * one["faces_tracked"]
    assert {t["run"] for t in s["tracks"]} == {1, 2}
    longest = max(t["seconds"] for t in one["tracks"])
    assert max(t["seconds"] for t in s["tracks"]) <= longest + 1.0
    r = summary_cli(str(written))
    assert r.returncode == 0 and "2 runs" in r.stdout and "2:1" in r.stdout, r.stderr


def test_files_given_together_are_one_stream(results, tmp_path):
    """Daily files: a face in view across midnight is one face, not two."""
    lines = results["jsonl"].read_text().splitlines(keepends=True)
    half = len(lines) // 2
    a, b = tmp_path / "day1.jsonl", tmp_path / "day2.jsonl"
    a.write_text("".join(lines[:half]))
    b.write_text("".join(lines[half:]))
    whole = summarize(*read_frames(results["jsonl"]))
    r = summary_cli(str(a), str(b), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == whole and whole["runs"] == 1
    split = {f["track_id"] for x in lines[:half] for f in json.loads(x)["faces"]} & \
        {f["track_id"] for x in lines[half:] for f in json.loads(x)["faces"]}
    assert split, "the clip should have a face in view on both sides of the cut"


def test_by_hour_counts_faces_and_labels_per_period_of_local_time():
    t9 = time.mktime((2026, 11, 26, 9, 59, 58, 0, 0, -1))

    def fr(i, dt, *faces):
        return FrameRow(i, t9 + dt, tuple(FaceRow(tid, shown, 0.5) for tid, shown in faces))

    frames = [fr(0, 0, (1, "happy")), fr(1, 1, (1, "happy"), (2, "sad")),
              fr(2, 3, (1, "neutral")),  # 10:00:01: face 1 is in both hours
              fr(3, 4, (3, "angry"), (None, "fear")), fr(4, 5, (3, "angry")), fr(5, 6)]
    s = summarize(frames, min_frames=2, by="hour")  # face 2 (one frame) is left out
    nine, ten = s["periods"]
    assert (nine["period"], ten["period"]) == ("2026-11-26 09:00", "2026-11-26 10:00")
    assert (nine["frames"], nine["faces"], nine["face_frames"]) == (2, 1, 2)
    assert nine["shares"] == {"happy": 1.0}
    assert (ten["frames"], ten["faces"], ten["face_frames"]) == (4, 2, 4)
    assert ten["shares"] == {"angry": 0.5, "neutral": 0.25, "fear": 0.25}
    assert ten["most_shown"] == "angry"
    assert sum(p["face_frames"] for p in s["periods"]) == s["room"]["face_frames"]
    assert "periods" not in summarize(frames)  # without --by the summary is as before


def test_cli_by_minute_and_its_csv(results, tmp_path):
    out = tmp_path / "minutes.csv"
    r = summary_cli(str(results["jsonl"]), "--by", "minute", "--by-csv", str(out), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["by"] == "minute" and sum(p["frames"] for p in s["periods"]) == s["frames"]
    rows = list(csv.DictReader(out.open()))
    assert [x["period"] for x in rows] == [p["period"] for p in s["periods"]]
    assert [int(x["faces"]) for x in rows] == [p["faces"] for p in s["periods"]]
    r = summary_cli(str(results["jsonl"]), "--by-csv", str(out))
    assert r.returncode == 2 and "--by" in r.stderr


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_a_clock_step_inside_a_visit_does_not_stretch_it(tmp_path, suffix):
    """A Pi 4 sets its wall clock from NTP after boot: a camera's records jump by hours
    while a face is in view. The JSONL carries the camera's monotonic clock and fer-summary
    takes durations from it (2 s, not two hours); a CSV keeps its columns and can only say
    what its wall-clock timestamps say."""
    import numpy as np

    from fer_pi.core.labels import LABELS
    from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction
    from fer_pi.outputs.results import ResultWriter

    path = tmp_path / f"r.{suffix}"
    writer = ResultWriter(path, LABELS)
    image = np.zeros((48, 48, 3), np.uint8)
    probs = tuple(np.eye(7)[3] * 0.9 + 0.1 / 7)
    for i in range(21):  # 2 s at 10 FPS; the wall clock steps forward 2 h after frame 10
        wall = 1_790_000_000.0 + i * 0.1 + (7200.0 if i > 10 else 0.0)
        face = Face(FaceBox(10, 10, 20, 20), Prediction(probs, LABELS), track_id=1,
                    shown="happy")
        writer.write(FrameResult(Frame(i, wall, image, "cam", monotonic=500.0 + i * 0.1),
                                 (face,)))
    writer.close()
    frames, _ = read_frames(path)
    (track,) = summarize(frames)["tracks"]
    if suffix == "jsonl":
        assert track["seconds"] == pytest.approx(2.0)
    else:
        assert track["seconds"] == pytest.approx(7202.0)


# -- fer-summary --report ---------------------------------------------------------------
def _embedded(page: str) -> dict:
    import re

    return json.loads(re.search(r'<script type="application/json" id="summary">(.*?)</script>',
                                page, re.S)[1].replace("<\\/", "</"))


def test_report_is_one_file_with_fer_summarys_figures(results, tmp_path):
    import re

    report = tmp_path / "report.html"
    r = summary_cli(str(results["jsonl"]), "--json", "--report", str(report))
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    page = report.read_text()
    data = _embedded(page)
    # the same figures, with the periods the report chose (a 10-frame clip: by minute)
    assert data["by"] == "minute" and data["periods"][0]["face_frames"] == printed["room"]["face_frames"]
    assert {k: v for k, v in data.items() if k not in ("by", "periods")} == printed
    # one row a face, its seconds and frames as fer-summary counts them
    rows = re.findall(r"<tr><td>(\d+)</td>.*?<td class=n>([\d.]+)</td><td class=n>(\d+)</td>", page)
    assert [(int(a), b, int(c)) for a, b, c in rows] == [
        (t["track_id"], f"{t['seconds']:.2f}", t["frames"]) for t in printed["tracks"]]
    # the timeline's bars add up to the room's face-frames: one rect per label per slice
    from fer_pi.outputs.report import timeline
    from fer_pi.outputs.summary import iter_files

    line = timeline(iter_files([results["jsonl"]], [0]), printed)
    assert sum(sum(b["counts"].values()) for b in line["bins"]) == printed["room"]["face_frames"]
    assert sum(b["frames"] for b in line["bins"]) == printed["frames"]
    # it stands alone: nothing fetched, nothing run
    outside = set(re.findall(r"https?://[^\s\"'<>]+", page)) - {"http://www.w3.org/2000/svg"}
    assert not outside and not re.search(r"<img|<script(?! type=\"application/json\")|<link|"
                                         r"url\(|@import", page)


def test_report_of_a_file_without_faces_and_of_an_empty_file(clips, tmp_path):
    res = tmp_path / "empty.jsonl"
    assert run_cli("--video", str(clips["empty"]), "--headless", "--output", str(res)).returncode == 0
    assert main([str(res), "--report", str(tmp_path / "a.html")]) == 0
    page = (tmp_path / "a.html").read_text()
    assert 'id="empty"' in page and "No face was shown in these 20 frames" in page
    assert '<table id="faces"' not in page
    (tmp_path / "none.jsonl").write_text("")
    assert main([str(tmp_path / "none.jsonl"), "--report", str(tmp_path / "b.html")]) == 0
    assert "it holds no frame" in (tmp_path / "b.html").read_text()


def test_report_escapes_what_a_file_says_and_keeps_runs_apart(tmp_path, capsys):
    bad = "<script>alert(1)</script>"
    lines = []
    for run in range(2):  # two runs: frame numbers begin again
        for i in range(5):
            lines.append(json.dumps({"frame": i, "timestamp": 1_800_000_000 + 10 * run + i,
                                     "faces": [{"track_id": 1, "label": "happy",
                                                "confidence": 0.9, "shown": bad}]}))
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    assert main([str(tmp_path / "r.jsonl"), "--report", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert bad not in page.replace("<\\/", "</").split('id="summary">')[0]
    assert "&lt;script&gt;" in page and "<td>1:1</td>" in page and "<td>2:1</td>" in page
    assert _embedded(page)["runs"] == 2


def test_an_unwritable_report_is_exit_5_naming_it(results, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "report.html"
    assert main([str(results["jsonl"]), "--report", str(target)]) == 5
    err = capsys.readouterr().err
    assert str(target) in err and err.count("\n") == 1

"""Bad data through the real code paths: corrupt and truncated clips, odd frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import need, run_cli

from fer_pi.core.labels import LABELS
from fer_pi.sources.demo import Placement, compose, write_clip


def _clip(path, face, n=30):
    return write_clip(path, (compose([Placement(120 + i, 40, 400)], face=face) for i in range(n)))


def _jpeg_starts(data: bytes) -> list[int]:
    out, i = [], data.find(b"\xff\xd8\xff")
    while i != -1:
        out.append(i)
        i = data.find(b"\xff\xd8\xff", i + 3)
    return out


def test_corrupt_frames_are_skipped_and_counted(tmp_path, face):
    clip = _clip(tmp_path / "c.avi", face)
    data = bytearray(clip.read_bytes())
    starts = _jpeg_starts(bytes(data))
    assert len(starts) == 30
    for k in (5, 6, 15):  # wipe the start of three frames' JPEG data
        data[starts[k]:starts[k] + 2000] = bytes(2000)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    out, health = tmp_path / "r.jsonl", tmp_path / "h.json"
    proc = run_cli("--video", str(bad), "--headless", "--output", str(out), "--health-file",
                   str(health))
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 27
    frames_in_clip = [round(r["timestamp"] * 30) for r in recs]
    assert not {5, 6, 15} & set(frames_in_clip) and frames_in_clip[-1] == 29
    assert json.loads(health.read_text())["corrupt_frames"] == 3
    assert "frame 5 unreadable, skipped" in proc.stderr


def test_truncated_clip_keeps_what_it_has(tmp_path, face):
    clip = _clip(tmp_path / "c.avi", face)
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: _jpeg_starts(data)[12] + 500])
    out = tmp_path / "r.jsonl"
    proc = run_cli("--video", str(cut), "--headless", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert 10 <= len(recs) <= 12
    # shown from its third sighting on (detect.confirm_frames), then in every frame kept
    assert [len(r["faces"]) for r in recs] == [0, 0] + [1] * (len(recs) - 2)


def test_odd_frames_do_not_break_the_pipeline(tmp_path, face):
    frame = compose([Placement(100, 40, 400)], face=face)
    cv2.imwrite(str(tmp_path / "1_gray.png"), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "2_bgra.png"), cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(tmp_path / "3_4k.png"), cv2.resize(frame, (3840, 2880)))
    cv2.imwrite(str(tmp_path / "4_tiny.png"), cv2.resize(frame, (16, 12)))
    cv2.imwrite(str(tmp_path / "5_16bit.png"), frame.astype(np.uint16) * 256)
    out = tmp_path / "r.jsonl"
    proc = run_cli("--images", str(tmp_path), "--headless", "--output", str(out),
                   "--save-frames", str(tmp_path / "annotated"))
    assert proc.returncode == 0, proc.stderr
    faces = [len(json.loads(x)["faces"]) for x in out.read_text().splitlines()]
    assert faces == [1, 1, 1, 0, 1]
    assert len(list((tmp_path / "annotated").glob("*.png"))) == 5


def test_many_faces_respect_max_faces(tmp_path, face):
    from fer_pi.sources.demo import astronaut_face_bgr, grid_placements

    tile = astronaut_face_bgr()
    clip = write_clip(tmp_path / "six.avi",
                      (compose(grid_placements(6), face=tile) for _ in range(5)))
    out = tmp_path / "r.jsonl"
    proc = run_cli("--video", str(clip), "--headless", "--output", str(out), "--max-faces", "4")
    assert proc.returncode == 0, proc.stderr
    # the four largest, each shown from its third sighting (detect.confirm_frames)
    assert [len(json.loads(x)["faces"]) for x in out.read_text().splitlines()] == [0, 0, 4, 4, 4]


def test_output_write_errors_do_not_stop_the_run(tmp_path, clips):
    """A full disk mid-run (here: the output is /dev/full) is logged; the run goes on."""
    import os

    if not os.path.exists("/dev/full"):
        need("/dev/full")
    out = tmp_path / "r.jsonl"
    out.symlink_to("/dev/full")
    health = tmp_path / "health.json"
    proc = run_cli("--video", str(clips["two"]), "--headless", "--output", str(out),
                   "--health-file", str(health))
    assert proc.returncode == 0, proc.stderr
    assert "cannot write" in proc.stderr and "the board goes on" in proc.stderr
    assert json.loads(health.read_text())["output"] == {"path": str(out), "records": 0,
                                                        "not_written": 10}
    assert "10 frames" in proc.stderr  # every frame was still processed


@pytest.fixture
def small_fs(tmp_path):
    """A real 64 KiB file system the test can fill (tmpfs; mounting needs root, as CI runs)."""
    import os
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        need("root, to mount a small tmpfs and fill it", ci_must=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode:
        need(f"a mountable tmpfs ({proc.stderr.strip()})", ci_must=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_loses_whole_records_only(small_fs):
    """On a real full file system: records that do not fit are cut back whole (no torn line
    written later from a buffer), counted once each, and writing resumes when space is freed."""
    import os

    from fer_pi.core.records import Face, FaceBox, Frame, FrameResult, Prediction
    from fer_pi.outputs.results import ResultWriter

    pred = Prediction((0.1, 0.2, 0.1, 0.3, 0.1, 0.1, 0.1), LABELS)
    faces = tuple(Face(FaceBox(i, i, 50, 50), pred, i) for i in range(6))  # about 1 KB a record
    img = np.zeros((4, 4, 3), np.uint8)
    out = small_fs / "r.jsonl"
    w = ResultWriter(out, LABELS)
    filler = small_fs / "filler"
    with open(filler, "wb") as fh:  # leave a few records' room
        fh.write(b"x" * (os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize - 5000))
    for i in range(40):
        w.write(FrameResult(Frame(i, i / 30, img), faces))
    full_rows, full_errors = w.rows, w.errors
    assert full_errors > 0 and full_rows > 0 and full_rows + full_errors == 40
    filler.unlink()  # space again
    for i in range(40, 50):
        w.write(FrameResult(Frame(i, i / 30, img), faces))
    w.close()
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the file ends on a whole line"
    frames = [json.loads(x)["frame"] for x in lines[:-1]]  # every line is valid JSON
    assert frames == list(range(full_rows)) + list(range(40, 50))
    assert w.rows == len(frames) and w.errors == full_errors
    assert w.status() == {"path": str(out), "records": len(frames), "not_written": full_errors}


def test_metadata_that_disagrees_with_the_model(tmp_path, model_path, clips):
    import shutil

    bad = tmp_path / "m.tflite"
    shutil.copy(model_path, bad)
    meta = json.loads(model_path.with_suffix(".json").read_text())
    meta["labels"] = meta["labels"][:5]
    bad.with_suffix(".json").write_text(json.dumps(meta))
    proc = run_cli("--video", str(clips["empty"]), "--headless", "--model", str(bad))
    assert proc.returncode == 4
    assert "model has 7 outputs but 5 labels" in proc.stderr and str(bad) in proc.stderr
    bad.with_suffix(".json").write_text("{not json")
    proc = run_cli("--video", str(clips["empty"]), "--headless", "--model", str(bad))
    assert proc.returncode == 4 and "metadata unreadable" in proc.stderr


def test_a_screen_missing_at_boot_exits_6_or_is_waited_for(tmp_path, clips):
    """SDL cannot open the screen (here: a video driver that does not exist, as KMSDRM fails
    with the screen off). By default that is exit 6 naming the display; with
    board.screen_retry_s the run goes on without the board and nothing is lost."""
    env = {"SDL_VIDEODRIVER": "nosuchdriver"}
    proc = run_cli("--video", str(clips["moving"]), "--windowed", env=env)
    assert proc.returncode == 6, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("fer-pi:")]
    assert "display error" in line and "--headless" in line
    out, health = tmp_path / "r.jsonl", tmp_path / "h.json"
    proc = run_cli("--video", str(clips["moving"]), "--windowed", "--screen-retry", "1",
                   "--output", str(out), "--health-file", str(health), env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 60
    assert "going on without the board, trying again every 1 s" in proc.stderr
    assert json.loads(health.read_text())["screen"] == "waiting"
    assert "Traceback" not in proc.stderr


def test_the_board_opens_when_the_screen_appears(monkeypatch):
    """board.screen_retry_s on a real pygame display: while SDL cannot open one the loop goes on
    (show says keep going, keys say nothing), no retry before its time, and the first retry
    after the screen appears opens the board and draws."""
    import pygame
    from conftest import FakeClock

    from fer_pi.board.display import PygameDisplay
    from fer_pi.core.labels import LABELS
    from fer_pi.core.stats import RunStats

    pygame.display.quit()  # as at boot: no video subsystem yet (other tests leave one open)
    monkeypatch.setenv("SDL_VIDEODRIVER", "nosuchdriver")
    clock = FakeClock(0.0)
    screen = PygameDisplay(LABELS, fullscreen=False, window_size=(320, 240), retry_s=10.0,
                           now=clock)
    screen.open()
    assert screen.state == "waiting" and screen.show(None, RunStats()) and screen.handle_events()
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # the screen is switched on
    clock.t = 9.0
    assert screen.show(None, RunStats()) and screen.state == "waiting"  # not before its time
    clock.t = 10.5
    try:
        assert screen.show(None, RunStats()) and screen.state == "on"
        assert screen.surface is not None and screen.surface.get_size() == (320, 240)
    finally:
        screen.close()
